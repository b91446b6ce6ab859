// Microsoft Sentinel on the deployment's Log Analytics workspace, and the analytics rules for the
// audit trail's copy (docs/sentinel.md). The rules' queries, schedules, severities, entity mappings
// and MITRE ATT&CK tactics and techniques are in infra/sentinel/rules.json, which the test command
// checks with Microsoft's Kusto parser (scripts/check-kql.js) against infra/sentinel/tables.json.
// Onboarding: https://learn.microsoft.com/azure/sentinel/quickstart-onboard (the onboardingStates
// resource `default` on the workspace).

param workspaceName string
@description('The most users one caller may recover in an hour before the rule "one caller recovered many users" fires.')
@minValue(1)
param maxUsersPerCallerHour int = 5

var rules = loadJsonContent('../sentinel/rules.json')

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource onboarding 'Microsoft.SecurityInsights/onboardingStates@2025-09-01' = {
  scope: workspace
  name: 'default'
  properties: {}
}

resource alertRules 'Microsoft.SecurityInsights/alertRules@2025-09-01' = [for rule in rules: {
  scope: workspace
  name: guid(workspace.id, 'mfa-recovery', rule.id)
  kind: 'Scheduled'
  properties: {
    displayName: rule.displayName
    description: rule.description
    enabled: true
    severity: rule.severity
    query: replace(join(rule.query, '\n'), '{{maxUsersPerCallerHour}}', string(maxUsersPerCallerHour))
    queryFrequency: rule.queryFrequency
    queryPeriod: rule.queryPeriod
    triggerOperator: 'GreaterThan'
    triggerThreshold: 0
    suppressionEnabled: false
    suppressionDuration: 'PT1H'
    tactics: rule.tactics
    techniques: rule.techniques
    entityMappings: empty(rule.entityMappings) ? null : rule.entityMappings
    eventGroupingSettings: {
      aggregationKind: 'AlertPerResult'
    }
    incidentConfiguration: {
      createIncident: true
      groupingConfiguration: {
        enabled: true
        reopenClosedIncident: false
        lookbackDuration: 'PT5H'
        matchingMethod: 'AllEntities'
      }
    }
  }
  dependsOn: [
    onboarding
  ]
}]

output rules array = [for (rule, i) in rules: alertRules[i].name]
