#!/bin/sh
# azd postprovision hook: lock the audit container's immutability policy (docs/deploy.md, "After
# the first deployment", step 5). Needs the Azure CLI signed in (`az login`). A template cannot lock it: the policy's state is set by the service, and locking is
# an action of its own (Blob Containers - Lock Immutability Policy, If-Match required:
# https://learn.microsoft.com/rest/api/storagerp/blob-containers/lock-immutability-policy), run here
# with the documented command (az storage container immutability-policy lock). Once locked:
# - nobody can delete the container or shorten the retention, not even an owner of the account;
# - the only change Azure takes is a longer retention (extend), so this hook extends the period when
#   auditRetentionDays grew, and sets MFA_RECOVERY_AUDIT_POLICY_LOCKED so the next provision leaves
#   the policy resource out (a create-or-update on a locked policy is refused).
# Opt out with `azd env set MFA_RECOVERY_LOCK_AUDIT_POLICY false` before the first `azd up`.
set -eu

lock="${MFA_RECOVERY_LOCK_AUDIT_POLICY:-true}"
account="${AZURE_STORAGE_ACCOUNT:?the provision outputs AZURE_STORAGE_ACCOUNT}"
group="${AZURE_RESOURCE_GROUP:?the provision outputs AZURE_RESOURCE_GROUP}"
days="${MFA_RECOVERY_AUDIT_RETENTION_DAYS:-365}"
container=audit
# azd's subscription, not whatever `az account show` says.
subscription="${AZURE_SUBSCRIPTION_ID:+--subscription $AZURE_SUBSCRIPTION_ID}"

case "$lock" in
  false|False|FALSE|0|no)
    echo "audit immutability policy: left unlocked (MFA_RECOVERY_LOCK_AUDIT_POLICY=$lock); whoever administers the storage account can delete the trail"
    exit 0
    ;;
esac

# shellcheck disable=SC2086 # $subscription is empty or two words
policy=$(az storage container immutability-policy show $subscription --account-name "$account" \
  --container-name "$container" --resource-group "$group" \
  --query "join(' ', [state, etag, to_string(immutabilityPeriodSinceCreationInDays)])" --output tsv)
# shellcheck disable=SC2086 # three words: the state, the etag (no spaces), the days
set -- $policy
state="${1:-}" etag="${2:-}" period="${3:-0}"

case "$state" in
  Unlocked)
    # shellcheck disable=SC2086
    az storage container immutability-policy lock $subscription --account-name "$account" \
      --container-name "$container" --resource-group "$group" --if-match "$etag" --output none
    echo "audit immutability policy: locked ($period days; retention can now only grow)"
    ;;
  Locked)
    if [ "$days" -gt "$period" ]; then
      # shellcheck disable=SC2086
      az storage container immutability-policy extend $subscription --account-name "$account" \
        --container-name "$container" --resource-group "$group" --if-match "$etag" \
        --period "$days" --allow-protected-append-writes true --output none
      echo "audit immutability policy: locked, extended from $period to $days days"
    else
      echo "audit immutability policy: locked ($period days)"
    fi
    ;;
  *)
    echo "audit immutability policy: unexpected state '$state' on $account/$container" >&2
    exit 1
    ;;
esac
azd env set MFA_RECOVERY_AUDIT_POLICY_LOCKED true
