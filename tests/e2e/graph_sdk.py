# Drives `scimsync serve`'s Graph endpoints with the official Microsoft Graph Python SDK
# (msgraph-sdk from PyPI), as automation would: list jobs, pause, start, restart, provision one
# user on demand, page through the provisioning logs. Prints one JSON object with what it saw;
# tests/e2e/graph_sdk.rs checks it. Arguments come from the environment: SCIMSYNC_BASE (the
# serve URL), SCIMSYNC_TOKEN (the admin token), SCIMSYNC_SP, SCIMSYNC_JOB, SCIMSYNC_USER.
import asyncio
import json
import os

from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.synchronization_job_application_parameters import (
    SynchronizationJobApplicationParameters,
)
from msgraph.generated.models.synchronization_job_restart_criteria import (
    SynchronizationJobRestartCriteria,
)
from msgraph.generated.models.synchronization_job_restart_scope import (
    SynchronizationJobRestartScope,
)
from msgraph.generated.models.synchronization_job_subject import SynchronizationJobSubject
from msgraph.generated.service_principals.item.synchronization.jobs.item.provision_on_demand.provision_on_demand_post_request_body import (
    ProvisionOnDemandPostRequestBody,
)
from msgraph.generated.service_principals.item.synchronization.jobs.item.restart.restart_post_request_body import (
    RestartPostRequestBody,
)
from msgraph.generated.audit_logs.provisioning.provisioning_request_builder import (
    ProvisioningRequestBuilder,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration


class AdminToken(AccessTokenProvider):
    """The scimsync admin token as the bearer token (scimsync has no OAuth)."""

    def __init__(self, token):
        self.token = token

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return self.token

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([])


def enum_name(v):
    return getattr(v, "value", v)


async def main():
    base = os.environ["SCIMSYNC_BASE"]
    sp = os.environ["SCIMSYNC_SP"]
    job_id = os.environ["SCIMSYNC_JOB"]
    user = os.environ["SCIMSYNC_USER"]
    auth = BaseBearerTokenAuthenticationProvider(AdminToken(os.environ["SCIMSYNC_TOKEN"]))
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = f"{base}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    out = {}

    jobs = client.service_principals.by_service_principal_id(sp).synchronization.jobs
    listed = await jobs.get()
    out["jobs"] = [j.id for j in listed.value]
    job = jobs.by_synchronization_job_id(job_id)
    got = await job.get()
    out["code"] = enum_name(got.status.code)
    out["interval_seconds"] = got.schedule.interval.total_seconds()
    out["last_state"] = enum_name(got.status.last_execution.state) if got.status.last_execution else None

    await job.pause.post()
    out["after_pause"] = enum_name((await job.get()).schedule.state)
    await job.start.post()
    out["after_start"] = enum_name((await job.get()).schedule.state)
    await job.restart.post(
        RestartPostRequestBody(
            criteria=SynchronizationJobRestartCriteria(
                reset_scope=SynchronizationJobRestartScope.Watermark
            )
        )
    )
    out["restarted"] = True

    # As automation does: the rule to provision under comes from the job's schema.
    schema = await job.schema.get()
    rule_id = schema.synchronization_rules[0].id
    out["rule_id"] = rule_id

    pair = await job.provision_on_demand.post(
        ProvisionOnDemandPostRequestBody(
            parameters=[
                SynchronizationJobApplicationParameters(
                    rule_id=rule_id,
                    subjects=[SynchronizationJobSubject(object_id=user, object_type_name="User")],
                )
            ]
        )
    )
    out["on_demand_key"] = json.loads(pair.key)
    out["on_demand_value"] = json.loads(pair.value)

    config = RequestConfiguration(
        query_parameters=ProvisioningRequestBuilder.ProvisioningRequestBuilderGetQueryParameters(
            top=3, filter=f"jobId eq '{job_id}'"
        )
    )
    page = await client.audit_logs.provisioning.get(request_configuration=config)
    ids, pages = [], 0
    while True:
        pages += 1
        for e in page.value:
            ids.append(e.id)
            assert e.job_id == job_id, e.job_id
        if not page.odata_next_link or pages > 200:
            break
        page = await client.audit_logs.provisioning.with_url(page.odata_next_link).get()
    out["log_ids"] = ids
    out["log_pages"] = pages
    print(json.dumps(out))


asyncio.run(main())
