// mfa-recovery: the whole function set in one resource group, deployed by `azd up`
// (docs/deploy.md). No secret is in any parameter or app setting: connector and webhook secrets
// live in the Key Vault created here, set out of band, and the app reads them with its identity.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Azure region for every resource.')
param location string

@allowed([
  'default'
  'recover'
])
@description('`recover` after `azd down`: the Key Vault was soft-deleted and purge protection keeps its name for 90 days; this brings it back with its secrets (docs/deploy.md).')
param keyVaultCreateMode string = 'default'

@allowed([
  'included'
  'separate'
])
@description('`included`: this deployment also registers the API and grants the identity its Graph permissions (the deployer needs Privileged Role Administrator). `separate`: a Privileged Role Administrator deploys infra/entra.bicep with this deployment\'s outputs, and this one takes theirs (apiAppId, apiIdentifierUri; docs/deploy.md).')
param entraDeployment string = 'included'

@description('With entraDeployment=separate: the API\'s application (client) id, output MFA_RECOVERY_API_APP_ID of infra/entra.bicep.')
param apiAppId string = ''

@description('With entraDeployment=separate: the API\'s App ID URI, output MFA_RECOVERY_API_URI of infra/entra.bicep.')
param apiIdentifierUri string = ''

@description('More addresses the console is served at, such as a custom domain\'s `https://recovery.contoso.com/api/console/` (the function app\'s own is registered always).')
param consoleRedirectUris array = []

@description('Any other setting of docs/configuration.md as {"NAME": "value"} (for example APPROVAL_NOTIFY_GROUP, TWILIO_*, SERVICENOW_FIELDS): `azd env set MFA_RECOVERY_EXTRA_APP_SETTINGS \'{"APPROVAL_NOTIFY_GROUP":"<group id>"}\'`. They win over the values the other parameters give. Settings added in the portal are replaced at the next provision: put them here.')
param extraAppSettings object = {}

@description('Flex: custom-handler runtime version; check az functionapp list-flexconsumption-runtimes --location <region> --runtime custom.')
param customRuntimeVersion string = '1.0'

@description('Flex: most instances to scale out to (Microsoft documents 40 as the lowest maximum a Flex app may set).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Days an audit record cannot be changed or deleted.')
@minValue(1)
param auditRetentionDays int = 365

@description('Lock the audit container\'s immutability policy after each provision (the postprovision hook, scripts/azd/lock-audit-policy.sh): then nobody can delete the container or shorten the retention. On by default; false leaves it unlocked.')
param lockAuditPolicy bool = true

@description('Set by the postprovision hook once the policy is locked: the templates then leave the policy alone (Azure refuses a create-or-update of a locked policy; the hook extends it instead).')
param auditPolicyLocked bool = false

@description('Send every audit record to a Log Analytics custom table (MfaRecoveryAudit_CL) through the Logs Ingestion API: the table, a data collection rule and the identity\'s Monitoring Metrics Publisher role on it (docs/audit.md).')
param logAnalyticsExport bool = true

@description('Onboard the workspace to Microsoft Sentinel and deploy the analytics rules for the audit trail (docs/sentinel.md); needs logAnalyticsExport. Sentinel bills by the data the workspace ingests.')
param sentinelRules bool = false

@description('The rule "one caller recovered many users in an hour" fires above this many users.')
@minValue(1)
param sentinelMaxUsersPerCallerHour int = 5

@description('Who users should call if a change was not theirs (in every notice).')
param noticeContact string = 'your IT service desk'

@allowed([
  'graph'
  'acs'
])
@description('Email delivery and notices: Graph sendMail from mailSender (allowed for that mailbox alone with Exchange RBAC for Applications, docs/deploy.md), or Azure Communication Services.')
param emailProvider string = 'graph'

@description('UPN of the service mailbox that sends email (emailProvider graph).')
param mailSender string = ''

@description('Azure Communication Services endpoint for SMS (and email with emailProvider acs), https://<name>.communication.azure.com.')
param acsEndpoint string = ''
@description('ACS sending number (E.164) and sender address.')
param acsSmsFrom string = ''
param acsEmailFrom string = ''
@description('Name of the Key Vault secret holding the ACS access key (the value is set out of band).')
param acsAccessKeySecretName string = 'acs-access-key'

@description('JSON list of webhook senders (WEBHOOK_SENDERS, docs/security.md); secret names only.')
param webhookSenders string = ''

@description('ServiceNow write-back: instance URL, integration user, and the Key Vault secret name of its password.')
param serviceNowInstanceUrl string = ''
param serviceNowUser string = ''
param serviceNowPasswordSecretName string = 'servicenow-password'

@description('Jira Service Management write-back: site URL, account, and the Key Vault secret name of its API token.')
param jiraBaseUrl string = ''
param jiraUser string = ''
param jiraApiTokenSecretName string = 'jira-api-token'

@description('Callbacks: the Key Vault secret name that signs them, and the hosts a callbackUrl may use (comma-separated).')
param callbackSigningSecretName string = ''
param callbackAllowedHosts string = ''

@description('Group object ids (comma-separated) whose members are refused like role holders.')
param tapProtectedGroups string = ''

@description('Entra ID Protection risk before a code or a pass (RISK_CHECK): if_available (skip a tenant without Entra ID P2, fail closed otherwise), required (fail closed on every failed read) or off.')
@allowed([
  'if_available'
  'required'
  'off'
])
param riskCheck string = 'if_available'

@description('Compliance sweep: schedule (6-field NCRONTAB, UTC), the groups the helpdesk serves, the key-user groups, and nudges.')
param sweepSchedule string = '0 0 2 * * *'
param sweepHelpdeskGroups string = ''
param sweepKeyUserGroups string = ''
param sweepNudge bool = false


var token = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'mfa-recovery'
}
var deploymentContainerName = 'app-package-${take(token, 7)}'
var entraIncluded = entraDeployment == 'included'
// The function app's default host name (`func-<token>` in modules/functionapp.bicep, without the
// optional unique-hostname scope): the console's address, registered before the app exists.
var consoleUrl = 'https://func-${token}.azurewebsites.net/api/console/'

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  scope: group
  name: 'identity'
  params: {
    location: location
    token: token
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  scope: group
  name: 'storage'
  params: {
    location: location
    token: token
    tags: tags
    principalId: identity.outputs.principalId
    auditRetentionDays: auditRetentionDays
    auditPolicyLocked: auditPolicyLocked
    deploymentContainerName: deploymentContainerName
  }
}

module vault 'modules/keyvault.bicep' = {
  scope: group
  name: 'keyvault'
  params: {
    createMode: keyVaultCreateMode
    location: location
    token: token
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  scope: group
  name: 'monitoring'
  params: {
    location: location
    token: token
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module auditExport 'modules/auditexport.bicep' = if (logAnalyticsExport) {
  scope: group
  name: 'auditexport'
  params: {
    location: location
    token: token
    tags: tags
    workspaceName: monitoring.outputs.workspaceName
    principalId: identity.outputs.principalId
    retentionInDays: max(min(auditRetentionDays, 730), 4)
  }
}

module sentinel 'modules/sentinel.bicep' = if (sentinelRules && logAnalyticsExport) {
  scope: group
  name: 'sentinel'
  params: {
    workspaceName: monitoring.outputs.workspaceName
    maxUsersPerCallerHour: sentinelMaxUsersPerCallerHour
  }
}

// The Entra part (API registration, Graph permissions). With entraDeployment=separate it is
// infra/entra.bicep, deployed by a Privileged Role Administrator, and its outputs come back here
// as apiAppId and apiIdentifierUri.
module graph 'modules/graph.bicep' = if (entraIncluded) {
  scope: group
  name: 'graph'
  params: {
    token: token
    environmentName: environmentName
    principalId: identity.outputs.principalId
    consoleRedirectUris: concat([consoleUrl], consoleRedirectUris)
  }
}

module app 'modules/functionapp.bicep' = {
  scope: group
  name: 'functionapp'
  params: {
    location: location
    token: token
    tags: tags
    customRuntimeVersion: customRuntimeVersion
    maximumInstanceCount: maximumInstanceCount
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    extraAppSettings: extraAppSettings
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: vault.outputs.uri
    apiAudience: entraIncluded ? graph.outputs.apiIdentifierUri : apiIdentifierUri
    apiClientId: entraIncluded ? graph.outputs.apiAppId : apiAppId
    settings: {
      sweepSchedule: sweepSchedule
      sweepHelpdeskGroups: sweepHelpdeskGroups
      sweepKeyUserGroups: sweepKeyUserGroups
      sweepNudge: sweepNudge
      tapProtectedGroups: tapProtectedGroups
      riskCheck: riskCheck
      noticeContact: noticeContact
      emailProvider: emailProvider
      mailSender: mailSender
      acsEndpoint: acsEndpoint
      acsAccessKeySecretName: empty(acsEndpoint) ? '' : acsAccessKeySecretName
      acsSmsFrom: acsSmsFrom
      acsEmailFrom: acsEmailFrom
      webhookSenders: webhookSenders
      serviceNowInstanceUrl: serviceNowInstanceUrl
      serviceNowUser: serviceNowUser
      serviceNowPasswordSecretName: empty(serviceNowInstanceUrl) ? '' : serviceNowPasswordSecretName
      jiraBaseUrl: jiraBaseUrl
      jiraUser: jiraUser
      jiraApiTokenSecretName: empty(jiraBaseUrl) ? '' : jiraApiTokenSecretName
      callbackSigningSecretName: callbackSigningSecretName
      callbackAllowedHosts: callbackAllowedHosts
      auditExportEndpoint: logAnalyticsExport ? auditExport.outputs.endpoint : ''
      auditExportRuleId: logAnalyticsExport ? auditExport.outputs.ruleId : ''
    }
  }
}

output AZURE_RESOURCE_GROUP string = group.name
// Read by the postprovision hook that locks the audit container's immutability policy.
output MFA_RECOVERY_LOCK_AUDIT_POLICY bool = lockAuditPolicy
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AZURE_FUNCTION_APP_URL string = 'https://${app.outputs.hostName}'
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output AZURE_KEY_VAULT_URI string = vault.outputs.uri
output AZURE_STORAGE_ACCOUNT string = storage.outputs.name
output MFA_RECOVERY_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MFA_RECOVERY_API_APP_ID string = entraIncluded ? graph.outputs.apiAppId : apiAppId
output MFA_RECOVERY_API_URI string = entraIncluded ? graph.outputs.apiIdentifierUri : apiIdentifierUri
output MFA_RECOVERY_GRAPH_PERMISSIONS array = entraIncluded ? graph.outputs.grantedPermissions : []
// What infra/entra.bicep takes (entraDeployment=separate): the identity to grant, the names' token.
output MFA_RECOVERY_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output MFA_RECOVERY_DEPLOYMENT_TOKEN string = token
// Email goes through Graph sendMail: the Exchange RBAC for Applications step of docs/deploy.md applies.
output MFA_RECOVERY_GRAPH_MAIL bool = emailProvider == 'graph'
// The helpdesk console (docs/console.md).
output MFA_RECOVERY_CONSOLE_URL string = 'https://${app.outputs.hostName}/api/console/'
