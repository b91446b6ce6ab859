// Key Vault with RBAC authorization for the connector and webhook secrets. The templates create
// two secrets: `verification-key` (random, new at each deployment: it keys the hashes of
// verification codes, which live ten minutes) and `audit-key` (random; each deployment adds a
// version, and every earlier version stays enabled so the anchors it signed still verify:
// docs/audit.md); set the connectors' values out of band (docs/deploy.md), under the names the
// app settings give.

param location string
param token string
param tags object
@description('Principal id of the function app identity.')
param principalId string
@allowed([
  'default'
  'recover'
])
@description('`recover` brings back the vault `azd down` soft-deleted (purge protection keeps its name taken for 90 days), with its secrets (docs/deploy.md).')
param createMode string = 'default'
@secure()
@description('Keys the hashes of verification codes (docs/verification.md). A new random value each deployment.')
param verificationKey string = newGuid()
@secure()
@description('Signs the audit trail\'s anchors and the stored decisions (docs/audit.md). Each deployment adds a new version; earlier versions stay enabled.')
param auditKey string = newGuid()

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: 'kv-${take(token, 20)}'
  location: location
  tags: tags
  properties: {
    createMode: createMode
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource verificationKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'verification-key'
  properties: {
    value: verificationKey
    contentType: 'text/plain'
  }
}

resource auditKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'audit-key'
  properties: {
    value: auditKey
    contentType: 'text/plain'
  }
}

// Read secrets, nothing else.
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output uri string = vault.properties.vaultUri
output name string = vault.name
