// The audit trail's copy in Log Analytics (docs/audit.md): the custom table, a data collection
// rule of kind Direct (its own Logs Ingestion endpoint, no data collection endpoint), and the
// function app identity's Monitoring Metrics Publisher role on that rule only. The app's
// `audit-export` timer posts to {endpoint}/dataCollectionRules/{immutableId}/streams/{stream}.
// https://learn.microsoft.com/azure/azure-monitor/logs/logs-ingestion-api-overview

param location string
param token string
param tags object
@description('Name of the Log Analytics workspace (modules/monitoring.bicep).')
param workspaceName string
@description('Principal id of the function app identity.')
param principalId string
@description('Days the copy stays queryable (Analytics retention, 4 to 730).')
@minValue(4)
@maxValue(730)
param retentionInDays int = 365

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var tableName = 'MfaRecoveryAudit_CL'
var streamName = 'Custom-MfaRecoveryAudit'
// One row per record (Kind `record`) or per chain head (Kind `head`): src/audit/export.rs.
var columns = [
  { name: 'TimeGenerated', table: 'dateTime', stream: 'datetime' }
  { name: 'Kind', table: 'string', stream: 'string' }
  { name: 'RecordId', table: 'string', stream: 'string' }
  { name: 'Chain', table: 'string', stream: 'string' }
  { name: 'Seq', table: 'long', stream: 'long' }
  { name: 'Hash', table: 'string', stream: 'string' }
  { name: 'PrevHash', table: 'string', stream: 'string' }
  { name: 'Action', table: 'string', stream: 'string' }
  { name: 'Phase', table: 'string', stream: 'string' }
  { name: 'Outcome', table: 'string', stream: 'string' }
  { name: 'OutcomeCode', table: 'string', stream: 'string' }
  { name: 'CallerVia', table: 'string', stream: 'string' }
  { name: 'CallerObjectId', table: 'string', stream: 'string' }
  { name: 'CallerName', table: 'string', stream: 'string' }
  { name: 'OnBehalfOf', table: 'string', stream: 'string' }
  { name: 'TargetObjectId', table: 'string', stream: 'string' }
  { name: 'TargetUpn', table: 'string', stream: 'string' }
  { name: 'TicketSystem', table: 'string', stream: 'string' }
  { name: 'TicketId', table: 'string', stream: 'string' }
  { name: 'RequestId', table: 'string', stream: 'string' }
  { name: 'Details', table: 'dynamic', stream: 'dynamic' }
]

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

// Table column types are the Tables API's ('dateTime').
resource table 'Microsoft.OperationalInsights/workspaces/tables@2023-09-01' = {
  parent: workspace
  name: tableName
  properties: {
    plan: 'Analytics'
    retentionInDays: retentionInDays
    schema: {
      name: tableName
      columns: [for c in columns: {
        name: c.name
        type: c.table
      }]
    }
  }
}

// Stream column types are the rule's ('datetime', no 'guid').
resource rule 'Microsoft.Insights/dataCollectionRules@2024-03-11' = {
  name: 'dcr-${token}'
  location: location
  tags: tags
  kind: 'Direct'
  properties: {
    streamDeclarations: {
      '${streamName}': {
        columns: [for c in columns: {
          name: c.name
          type: c.stream
        }]
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'workspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          streamName
        ]
        destinations: [
          'workspace'
        ]
        transformKql: 'source'
        // `table.name`, not the variable: the rule waits for the table.
        outputStream: 'Custom-${table.name}'
      }
    ]
  }
}

// Send to this rule, nothing else.
resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(rule.id, principalId, monitoringMetricsPublisher)
  scope: rule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = rule.properties.endpoints.logsIngestion
output ruleId string = rule.properties.immutableId
output stream string = streamName
output table string = table.name
