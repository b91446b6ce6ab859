// Microsoft Graph through its Bicep extension: the application permissions the function app's
// identity needs for the features turned on, and the app registration of the API with its five
// app roles. The deployer needs Privileged Role Administrator (to grant application permissions)
// and Application Administrator or Cloud Application Administrator (for the registration).
extension microsoftGraphV1

param token string
param environmentName string
@description('Principal id (object id) of the function app identity.')
param principalId string
@description('The console\'s addresses (`https://<function app host>/api/console/`): registered as single-page-app redirect URIs, so agents sign in there with authorization code and PKCE.')
param consoleRedirectUris array

// Each permission, and the feature that needs it (docs/deploy.md; reference/graph-api.md section 13).
var always = [
  // tap, reset: create, list and delete Temporary Access Passes; list and delete methods.
  'UserAuthenticationMethod.ReadWrite.All'
  // tap, sweep: read the Temporary Access Pass policy (the current
  // temporaryaccesspassauthenticationmethodconfiguration-get page; Policy.Read.All is broader).
  'Policy.Read.AuthenticationMethod'
  // tap, reset: the user, their manager, otherMails, mobilePhone, transitive memberships (roles).
  'User.Read.All'
  // tap, reset (privileged targets are refused): active and PIM-eligible directory role
  // assignments at any scope (roleAssignmentScheduleInstances, roleEligibilityScheduleInstances)
  // and the names of built-in and custom roles (roleDefinitions). Read-only; it covers the two
  // narrower schedule permissions and is the least one that reads role definitions.
  'RoleManagement.Read.Directory'
  // tap, reset: PIM for Groups, the groups a user is only eligible to join or own.
  'PrivilegedEligibilitySchedule.Read.AzureADGroup'
  // tap, reset: who holds this API's own app roles (servicePrincipals/{id}/appRoleAssignedTo); a
  // recovered helpdesk agent could recover everyone, so agents are refused like admins.
  'Application.Read.All'
  // tap, reset: whether a group the user is eligible for sits inside a protected group; sweep:
  // members of key-user groups, transitively.
  'GroupMember.Read.All'
  // reset, and "this is not me" with NOT_ME_REVOKE_SESSIONS: revokeSignInSessions.
  'User.RevokeSessions.All'
  // sweep: reports/authenticationMethods/userRegistrationDetails; tap, verifications: the
  // directory audit log (who changed an address of record, when).
  'AuditLog.Read.All'
  // tap, reset, verifications: Entra ID Protection's risk of the user
  // (/identityProtection/riskyUsers/{id}, RISK_CHECK); read-only. Without Entra ID P2 Graph
  // answers 403 and RISK_CHECK=if_available (the default) goes on without it.
  'IdentityRiskyUser.Read.All'
  // tap, verifications: /auditLogs/directoryAudits needs it with AuditLog.Read.All (the
  // stale-address check, ADDRESS_MIN_AGE_DAYS); audit: includeEntra=true reads the same log.
  'Directory.Read.All'
]
// Mail.Send is not granted here: an Entra grant lets the identity send as any mailbox. Email through
// Graph sendMail (EMAIL_PROVIDER=graph) is allowed for the service mailbox alone with Exchange
// Online RBAC for Applications ("Application Mail.Send" on a management scope), which Bicep cannot
// set: docs/deploy.md gives the commands.
var permissions = always

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for permission in permissions: {
  appRoleId: filter(graph.appRoles, role => role.value == permission)[0].id
  principalId: principalId
  resourceId: graph.id
}]

// The API's one delegated scope. Its id, like each app role's, is a guid of the deployment token
// and its name: the same on every re-provisioning, as Graph requires (an enabled scope or role
// cannot be changed or removed, CannotDeleteOrUpdateEnabledEntitlement, until it is disabled).
var scope = {
  id: guid(token, 'user_impersonation')
  value: 'user_impersonation'
  type: 'User'
  isEnabled: true
  adminConsentDisplayName: 'Use mfa-recovery as the signed-in user'
  adminConsentDescription: 'Lets an app (the Power Automate connector) call mfa-recovery as the signed-in user; the user\'s app roles still apply.'
}

// The API's registration: callers get tokens for it with one of these roles.
var roles = [
  {
    value: 'Recovery.Tap'
    displayName: 'Issue Temporary Access Passes'
    description: 'Issue a Temporary Access Pass delivered to the user\'s phone or email of record.'
  }
  {
    value: 'Recovery.Reset'
    displayName: 'Require MFA re-registration'
    description: 'Remove a user\'s lost authentication methods and revoke their sessions.'
  }
  {
    value: 'Recovery.Request'
    displayName: 'Submit recovery requests'
    description: 'Submit queued recovery requests (ServiceNow, Jira, Power Automate) and read their status.'
  }
  {
    value: 'Audit.Read'
    displayName: 'Read the recovery audit trail'
    description: 'Read the audit trail and the compliance sweep reports.'
  }
  {
    value: 'Recovery.Approve'
    displayName: 'Approve recoveries'
    description: 'Approve or deny recoveries that wait for a second person (privileged accounts, docs/approval.md).'
  }
]

resource api 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: 'mfa-recovery-${token}'
  displayName: 'mfa-recovery (${environmentName})'
  signInAudience: 'AzureADMyOrg'
  // The console signs agents in with this registration (MSAL, authorization code with PKCE).
  spa: {
    redirectUris: consoleRedirectUris
  }
  identifierUris: [
    'api://${tenant().tenantId}/mfa-recovery-${token}'
  ]
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      scope
    ]
  }
  appRoles: [for role in roles: {
    id: guid(token, role.value)
    value: role.value
    displayName: role.displayName
    description: role.description
    allowedMemberTypes: [
      'User'
      'Application'
    ]
    isEnabled: true
  }]
}

// The Azure CLI (its well-known client id) may get a token for the API without a consent prompt,
// so an agent or approver can `az account get-access-token --resource <App ID URI>` (docs/deploy.md,
// "A first verified pass"). It grants nothing: the API's app roles still decide, and only
// principals assigned one get a token (appRoleAssignmentRequired). Graph refuses a
// pre-authorization of a scope it does not hold yet ("cannot be found"), so it is a second write
// of the registration, in a module that runs once the first has created the scope (one template
// cannot declare the same application twice).
module preAuthorize 'graph-preauthorize.bicep' = {
  name: 'graph-preauthorize-${take(token, 7)}'
  params: {
    uniqueName: api.uniqueName
    displayName: api.displayName
    scopes: [
      scope
    ]
    clientAppId: '04b07795-8ddb-461a-bbee-02f9e1bf7b46'
  }
}

// Only principals given a role may get a token for the API.
resource apiPrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: api.appId
  appRoleAssignmentRequired: true
}

// Admin consent for the console (the API's own registration signing agents in, docs/console.md):
// its own scope and sign-in (openid, profile, offline_access) for everyone, so no agent meets a
// consent prompt in a tenant that restricts user consent. It grants nothing by itself: only
// principals assigned an app role get a token, and the role decides what they may do.
resource consoleConsentApi 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = {
  clientId: apiPrincipal.id
  consentType: 'AllPrincipals'
  resourceId: apiPrincipal.id
  scope: 'user_impersonation'
}

resource consoleConsentSignIn 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = {
  clientId: apiPrincipal.id
  consentType: 'AllPrincipals'
  resourceId: graph.id
  scope: 'openid profile offline_access'
}

output apiAppId string = api.appId
output apiIdentifierUri string = api.identifierUris[0]
output grantedPermissions array = permissions
