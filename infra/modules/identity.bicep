// The function app's user-assigned managed identity: Graph, storage, Key Vault and telemetry all
// authenticate as it (AZURE_CLIENT_ID).

param location string
param token string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${token}'
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
