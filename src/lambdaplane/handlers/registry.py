"""The operation name → handler table."""

from __future__ import annotations

from lambdaplane.handlers import account, event_configs, functions, invoke, tags
from lambdaplane.handlers.base import Handler

HANDLERS: dict[str, Handler] = {
    # Creating or updating code inspects and writes a zip of up to 50 MB: off the loop.
    "CreateFunction": Handler(functions.create_function, blocking=True),
    "UpdateFunctionCode": Handler(functions.update_function_code, blocking=True),
    "GetFunction": Handler(functions.get_function),
    "GetFunctionConfiguration": Handler(functions.get_function_configuration),
    "ListFunctions": Handler(functions.list_functions),
    "UpdateFunctionConfiguration": Handler(functions.update_function_configuration),
    "DeleteFunction": Handler(functions.delete_function),
    "TagResource": Handler(tags.tag_resource),
    "UntagResource": Handler(tags.untag_resource),
    "ListTags": Handler(tags.list_tags),
    "GetAccountSettings": Handler(account.get_account_settings),
    "Invoke": Handler(coroutine=invoke.invoke),
    "PutFunctionEventInvokeConfig": Handler(event_configs.put_function_event_invoke_config),
    "UpdateFunctionEventInvokeConfig": Handler(event_configs.update_function_event_invoke_config),
    "GetFunctionEventInvokeConfig": Handler(event_configs.get_function_event_invoke_config),
    "DeleteFunctionEventInvokeConfig": Handler(event_configs.delete_function_event_invoke_config),
    "ListFunctionEventInvokeConfigs": Handler(event_configs.list_function_event_invoke_configs),
    "InvokeAsync": Handler(coroutine=invoke.invoke_async),
}
