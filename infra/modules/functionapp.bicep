// The function app: the custom handler (the `mfa-recovery` binary at the package root) on the
// Flex Consumption plan, Linux, with the
// user-assigned identity. Every app setting the binary reads is set here, under the names in
// docs/configuration.md; a test holds this file against the binary (tests/api/infra.rs).

param location string
param token string
param tags object
@description('Flex: the custom-handler runtime version (az functionapp list-flexconsumption-runtimes --location <region> --runtime custom).')
param customRuntimeVersion string
param maximumInstanceCount int
param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param appInsightsConnectionString string
param keyVaultUri string
param apiAudience string
@description('Client id of the API\'s app registration: accepted as a token audience too (v2 tokens carry it).')
param apiClientId string
param settings object
@description('Any other documented setting (docs/configuration.md), by name; these win over the values above, the host\'s storage and telemetry settings win over these.')
param extraAppSettings object = {}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

// Read by the Functions host (not the binary): identity-based host storage and telemetry.
var hostSettings = {
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// Read by the binary (docs/configuration.md). An empty value means "not set".
var appSettings = {
  AZURE_CLIENT_ID: identityClientId
  AUTH_TENANT_ID: tenant().tenantId
  AUTH_AUDIENCE: apiAudience
  AUTH_CLIENT_ID: apiClientId
  KEY_VAULT_URI: keyVaultUri
  AUDIT_CONTAINER: 'audit'
  REQUESTS_CONTAINER: 'recovery-requests'
  LIMITS_CONTAINER: 'recovery-limits'
  SWEEP_CONTAINER: 'sweeps'
  SWEEP_SCHEDULE: settings.sweepSchedule
  SWEEP_HELPDESK_GROUPS: settings.sweepHelpdeskGroups
  SWEEP_KEY_USER_GROUPS: settings.sweepKeyUserGroups
  SWEEP_NUDGE: settings.sweepNudge ? 'true' : 'false'
  TAP_PROTECTED_GROUPS: settings.tapProtectedGroups
  TAP_REQUIRE_VERIFICATION: 'service'
  RISK_CHECK: settings.riskCheck
  VERIFICATION_KEY_SECRET: 'verification-key'
  AUDIT_KEY_SECRET: 'audit-key'
  AUDIT_EXPORT_ENDPOINT: settings.auditExportEndpoint
  AUDIT_EXPORT_RULE_ID: settings.auditExportRuleId
  NOTICE_CONTACT: settings.noticeContact
  EMAIL_PROVIDER: settings.emailProvider
  MAIL_SENDER: settings.mailSender
  ACS_ENDPOINT: settings.acsEndpoint
  ACS_ACCESS_KEY_SECRET: settings.acsAccessKeySecretName
  ACS_SMS_FROM: settings.acsSmsFrom
  ACS_EMAIL_FROM: settings.acsEmailFrom
  WEBHOOK_SENDERS: settings.webhookSenders
  SERVICENOW_INSTANCE_URL: settings.serviceNowInstanceUrl
  SERVICENOW_USER: settings.serviceNowUser
  SERVICENOW_PASSWORD_SECRET: settings.serviceNowPasswordSecretName
  JIRA_BASE_URL: settings.jiraBaseUrl
  JIRA_USER: settings.jiraUser
  JIRA_API_TOKEN_SECRET: settings.jiraApiTokenSecretName
  CALLBACK_SIGNING_SECRET: settings.callbackSigningSecretName
  CALLBACK_ALLOWED_HOSTS: settings.callbackAllowedHosts
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-${token}'
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 512
      }
      runtime: {
        name: 'custom'
        version: customRuntimeVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [for s in items(union(appSettings, extraAppSettings, hostSettings)): {
        name: s.key
        value: s.value
      }]
    }
  }
}

output name string = app.name
output hostName string = app.properties.defaultHostName
