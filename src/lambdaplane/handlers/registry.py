"""The operation name → handler table."""

from __future__ import annotations

from lambdaplane.handlers import (
    account,
    aliases,
    concurrency,
    event_configs,
    event_source_mappings,
    functions,
    invoke,
    layers,
    permissions,
    provisioned,
    tags,
    url_configs,
)
from lambdaplane.handlers.base import Handler

HANDLERS: dict[str, Handler] = {
    # Creating or updating code inspects and writes a zip of up to 50 MB: off the loop.
    "CreateFunction": Handler(functions.create_function, blocking=True),
    "UpdateFunctionCode": Handler(functions.update_function_code, blocking=True),
    "GetFunction": Handler(functions.get_function),
    "GetFunctionConfiguration": Handler(functions.get_function_configuration),
    "ListFunctions": Handler(functions.list_functions),
    # With Layers, it may read the function's package to measure it: off the loop.
    "UpdateFunctionConfiguration": Handler(functions.update_function_configuration, blocking=True),
    "DeleteFunction": Handler(functions.delete_function),
    "PublishVersion": Handler(functions.publish_version),
    "ListVersionsByFunction": Handler(functions.list_versions_by_function),
    "CreateAlias": Handler(aliases.create_alias),
    "GetAlias": Handler(aliases.get_alias),
    "UpdateAlias": Handler(aliases.update_alias),
    "DeleteAlias": Handler(aliases.delete_alias),
    "ListAliases": Handler(aliases.list_aliases),
    "TagResource": Handler(tags.tag_resource),
    "UntagResource": Handler(tags.untag_resource),
    "ListTags": Handler(tags.list_tags),
    "GetAccountSettings": Handler(account.get_account_settings),
    "Invoke": Handler(coroutine=invoke.invoke),
    "InvokeWithResponseStream": Handler(coroutine=invoke.invoke_with_response_stream),
    "PutFunctionEventInvokeConfig": Handler(event_configs.put_function_event_invoke_config),
    "UpdateFunctionEventInvokeConfig": Handler(event_configs.update_function_event_invoke_config),
    "GetFunctionEventInvokeConfig": Handler(event_configs.get_function_event_invoke_config),
    "DeleteFunctionEventInvokeConfig": Handler(event_configs.delete_function_event_invoke_config),
    "ListFunctionEventInvokeConfigs": Handler(event_configs.list_function_event_invoke_configs),
    "InvokeAsync": Handler(coroutine=invoke.invoke_async),
    # Publishing inspects and writes a zip of up to 50 MB: off the loop.
    "PublishLayerVersion": Handler(layers.publish_layer_version, blocking=True),
    "GetLayerVersion": Handler(layers.get_layer_version),
    "GetLayerVersionByArn": Handler(layers.get_layer_version_by_arn),
    "ListLayers": Handler(layers.list_layers),
    "ListLayerVersions": Handler(layers.list_layer_versions),
    "DeleteLayerVersion": Handler(layers.delete_layer_version),
    "AddLayerVersionPermission": Handler(layers.add_layer_version_permission),
    "RemoveLayerVersionPermission": Handler(layers.remove_layer_version_permission),
    "GetLayerVersionPolicy": Handler(layers.get_layer_version_policy),
    # Creating one may ask the source's service whether the source exists: off the loop.
    "CreateEventSourceMapping": Handler(
        event_source_mappings.create_event_source_mapping, blocking=True
    ),
    "GetEventSourceMapping": Handler(event_source_mappings.get_event_source_mapping),
    "UpdateEventSourceMapping": Handler(
        event_source_mappings.update_event_source_mapping, blocking=True
    ),
    "DeleteEventSourceMapping": Handler(
        event_source_mappings.delete_event_source_mapping, blocking=True
    ),
    "ListEventSourceMappings": Handler(event_source_mappings.list_event_source_mappings),
    "AddPermission": Handler(permissions.add_permission),
    "RemovePermission": Handler(permissions.remove_permission),
    "GetPolicy": Handler(permissions.get_policy),
    "CreateFunctionUrlConfig": Handler(url_configs.create_function_url_config),
    "GetFunctionUrlConfig": Handler(url_configs.get_function_url_config),
    "UpdateFunctionUrlConfig": Handler(url_configs.update_function_url_config),
    "DeleteFunctionUrlConfig": Handler(url_configs.delete_function_url_config),
    "ListFunctionUrlConfigs": Handler(url_configs.list_function_url_configs),
    "PutFunctionConcurrency": Handler(concurrency.put_function_concurrency),
    "GetFunctionConcurrency": Handler(concurrency.get_function_concurrency),
    "DeleteFunctionConcurrency": Handler(concurrency.delete_function_concurrency),
    "PutProvisionedConcurrencyConfig": Handler(provisioned.put_provisioned_concurrency_config),
    "GetProvisionedConcurrencyConfig": Handler(provisioned.get_provisioned_concurrency_config),
    "DeleteProvisionedConcurrencyConfig": Handler(
        provisioned.delete_provisioned_concurrency_config
    ),
    "ListProvisionedConcurrencyConfigs": Handler(provisioned.list_provisioned_concurrency_configs),
}
