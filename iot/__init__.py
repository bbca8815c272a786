"""Device "things": declared once, exposed as MCP tools and as legacy IoT descriptors.

Public API (stable; other packages import from the submodules):

``iot.tools``
    ``ToolOutcome(text: str, is_error: bool = False)``;
    ``ToolCaller = Callable[[str, dict[str, Any]], Awaitable[ToolOutcome]]``.

``iot.thing`` — declaration and firmware argument coercion
    ``BoolParam(name, description="", default: bool | None = None)``
    ``IntParam(name, description="", minimum: int | None = None, maximum: int | None = None,
    default: int | None = None)``
    ``StrParam(name, description="", default: str | None = None, choices: tuple[str, ...] = ())``
    ``Prop(name, description, kind: type[bool] | type[int] | type[str])``
    ``Method(name, description, params: tuple[Param, ...], handler, user_only=False)`` where
    ``handler(thing: Thing, args: dict[str, bool | int | str]) -> Result | Awaitable[Result]``
    and ``Result = bool | int | str | dict | None`` (None → ``"true"``).
    ``Thing(name, description, props: tuple[Prop, ...], state: dict, methods: tuple[Method, ...])``:
    ``.set(prop, value)`` (fires on-change), ``.get(prop)``, ``.mcp_tools() -> list[Tool]``,
    ``.legacy_descriptor() -> IotDescriptor``, ``.legacy_state() -> IotState``,
    ``.legacy_name`` (CamelCase).
    ``ToolError(message)`` — raise from a handler; its text becomes the device error message.
    ``coerce_arguments(params, arguments: object) -> dict`` (firmware rules, raises ToolError);
    ``json_int(value) -> int | None``, ``check_range(param, value) -> int``,
    ``input_schema(params) -> InputSchema``, ``result_text(result) -> str``.
    ``tool_json(tool: Tool) -> str`` — the firmware's compact JSON of one tool.
    ``camel_case(snake) -> str``, ``snake_case(camel) -> str``.

``iot.things`` — simulated board
    ``demo_board(board_name="xiaozhi-sim", firmware_version="2.4.2") -> Board``.
    ``Board``: ``.board_name``, ``.firmware_version``, ``.things: dict[str, Thing]``,
    ``.on_change: Callable[[str, str, bool | int | str], None] | None`` (thing, property, value),
    ``.mcp_tools(with_user_tools=False) -> list[Tool]``, ``.find_tool(name) -> BoardTool | None``,
    ``async .call_tool(name, arguments: object) -> str`` (raises ToolError with firmware texts),
    ``.status() -> dict[str, dict[str, Any]]``, ``.device_status_json() -> str``,
    ``.legacy_descriptors() -> list[IotDescriptor]``,
    ``.legacy_states(delta=False) -> list[IotState]``,
    ``async .apply_legacy_command(cmd: IotCommand) -> ToolOutcome``,
    ``.inject_failure(tool_name, message)``, ``.inject_delay(tool_name, seconds)``,
    ``.clear_injections()``, ``.reboot_requests: int`` (count of ``self.reboot`` calls).
    Tool order: get_device_status, speaker.set_volume, screen.set_brightness/set_theme, the other
    thing methods, then user-only ``self.get_system_info``, ``self.reboot``.

``iot.mcp_server`` — device side
    ``McpServer(board, *, page_max_bytes=8000)``; ``async .handle(payload: object) -> dict | None``;
    ``.vision_url: str | None``, ``.vision_token: str | None``. ``handle`` awaits the tool (an
    injected delay makes it hang), so run each request in its own task, as the firmware does.

``iot.mcp_client`` — server side, any transport
    ``McpClient(send: Callable[[dict], Awaitable[None]], *, call_timeout_s=5.0, max_pages=16,
    vision_url=None, vision_token=None)``;
    ``async .start(*, with_user_tools=False) -> list[Tool]`` (raises ``McpClientError``);
    ``.tools: list[Tool]``; ``.server_info: dict | None``;
    ``.feed(payload: object) -> None``; ``async .call_tool(name, arguments) -> ToolOutcome``;
    ``.close() -> None``.

``iot.legacy`` — legacy IoT both sides
    device side: ``descriptors_messages(board, session_id="") -> list[IotDescriptors]`` (one per
    thing), ``states_message(board, session_id="", delta=False) -> IotStates``,
    ``async apply_commands(board, msg: IotCommands) -> list[ToolOutcome]``.
    server side: ``LegacyIotClient(send: Callable[[IotCommands], Awaitable[None]])``;
    ``.feed(msg: IotDescriptors | IotStates) -> None``; ``.tools -> list[Tool]``;
    ``.states -> dict[str, dict]``; ``async .call_tool(name, arguments) -> ToolOutcome``.

``iot.router``
    ``ToolRouter(mcp: McpClient | None = None, legacy: LegacyIotClient | None = None)``;
    attributes ``.mcp`` / ``.legacy`` may be set later; ``.tools -> list[Tool]``;
    ``async .call(name, arguments) -> ToolOutcome`` (a :data:`iot.tools.ToolCaller`).
"""
