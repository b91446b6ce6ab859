// The second write of the API's registration (modules/graph.bicep): pre-authorize a client for the
// scope the first write created. Graph answers a pre-authorization of a scope it does not hold yet
// with "cannot be found" (microsoft-graph-docs-contrib#1395), so the scope is created first and
// referred to here; this write names the registration by its uniqueName (an upsert of the same
// application) and repeats the scope unchanged, with the same id, because `api` is written whole.
extension microsoftGraphV1

@description('The registration\'s uniqueName, as the first write set it.')
param uniqueName string
@description('The registration\'s display name, unchanged (Graph requires it on every write).')
param displayName string
@description('The API\'s delegated scopes exactly as the first write set them (ids unchanged).')
param scopes array
@description('The client application (appId) that may get a token for these scopes without a consent prompt.')
param clientAppId string

resource api 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: scopes
    preAuthorizedApplications: [
      {
        appId: clientAppId
        delegatedPermissionIds: [for scope in scopes: scope.id]
      }
    ]
  }
}

output appId string = api.appId
