// mfa-recovery's Entra part alone, for organisations where the Azure owner running `azd up` is not
// a Privileged Role Administrator (docs/deploy.md, "When someone else holds the Entra roles").
// It registers the API (app roles, App ID URI) and grants the function app's identity its Graph
// application permissions: exactly what infra/main.bicep does inline with
// entraDeployment=included, through the same module. The main deployment then takes its outputs.
//
// The deployer needs Privileged Role Administrator (the grants) and Application Administrator or
// Cloud Application Administrator (the registration) in Entra, and the right to create a
// deployment in the resource group (Microsoft.Resources/deployments/write, for example
// Contributor on rg-<environment>): Bicep runs in an Azure scope even when it only changes Entra.
//
//   az deployment group create -g rg-<environment> -n mfa-recovery-entra -f infra/entra.bicep \
//     -p environmentName=<environment> token=<MFA_RECOVERY_DEPLOYMENT_TOKEN> \
//        principalId=<MFA_RECOVERY_IDENTITY_PRINCIPAL_ID>
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('The azd environment name of the main deployment (names the registration).')
param environmentName string

@minLength(13)
@description('Output MFA_RECOVERY_DEPLOYMENT_TOKEN of the main deployment: the registration\'s unique name and App ID URI carry it.')
param token string

@description('Output MFA_RECOVERY_IDENTITY_PRINCIPAL_ID of the main deployment: the identity that gets the Graph permissions.')
param principalId string

@description('More addresses the console is served at (a custom domain); the function app\'s own is registered always.')
param consoleRedirectUris array = []

module graph 'modules/graph.bicep' = {
  name: 'graph'
  params: {
    token: token
    environmentName: environmentName
    principalId: principalId
    consoleRedirectUris: concat(['https://func-${token}.azurewebsites.net/api/console/'], consoleRedirectUris)
  }
}

// Give these to the Azure owner: azd env set MFA_RECOVERY_API_APP_ID … and MFA_RECOVERY_API_URI …
output MFA_RECOVERY_API_APP_ID string = graph.outputs.apiAppId
output MFA_RECOVERY_API_URI string = graph.outputs.apiIdentifierUri
output MFA_RECOVERY_GRAPH_PERMISSIONS array = graph.outputs.grantedPermissions
