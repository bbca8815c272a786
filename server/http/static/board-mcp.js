// The browser is the board on the Talk page: an MCP server (protocol.md §6) for a few demo
// things. JSON-RPC 2.0 with numeric ids; tools/list pages are cut at ~8000 bytes of JSON with
// nextCursor = the name of the next tool; error objects carry only a message (no code).

export const LAMP_COLORS = ["white", "warm white", "red", "orange", "yellow", "green", "blue", "purple", "pink"];

export class DemoBoard {
  /** onChange(state) after every change; onCall({name, arguments, result, isError}). */
  constructor({ onChange = () => {}, onCall = () => {}, pageBytes = 8000 } = {}) {
    this.state = {
      lamp: { power: false, brightness: 100, color: "white" },
      audio_speaker: { volume: 70 },
    };
    this.onChange = onChange;
    this.onCall = onCall;
    this.pageBytes = pageBytes;
    this.tools = this._tools();
  }

  _tools() {
    const s = this.state;
    const set = (thing, prop) => (args) => { s[thing][prop] = args[prop]; return true; };
    const integer = (name, description) => ({ [name]: { type: "integer", description, minimum: 0, maximum: 100 } });
    return [
      { name: "self.get_device_status",
        description: "Provides the real-time information of the device, including the current status of the audio speaker and the lamp.\nUse this tool for: \n1. Answering questions about current condition (e.g. what is the current volume?)\n2. As the first step to control the device (e.g. turn up / down the volume)",
        inputSchema: { type: "object", properties: {} }, run: () => JSON.stringify(s) },
      { name: "self.audio_speaker.set_volume",
        description: "Set the volume of the audio speaker. If the current volume is unknown, you must call `self.get_device_status` tool first and then call this tool.",
        inputSchema: { type: "object", properties: integer("volume", "Volume"), required: ["volume"] },
        run: set("audio_speaker", "volume") },
      { name: "self.lamp.turn_on", description: "Turn on the lamp.",
        inputSchema: { type: "object", properties: {} }, run: () => { s.lamp.power = true; return true; } },
      { name: "self.lamp.turn_off", description: "Turn off the lamp.",
        inputSchema: { type: "object", properties: {} }, run: () => { s.lamp.power = false; return true; } },
      { name: "self.lamp.set_brightness", description: "Set the brightness of the lamp (percent).",
        inputSchema: { type: "object", properties: integer("brightness", "Brightness"), required: ["brightness"] },
        run: set("lamp", "brightness") },
      { name: "self.lamp.set_color", description: `Set the color of the lamp: ${LAMP_COLORS.join(", ")}.`,
        inputSchema: { type: "object", properties: { color: { type: "string", description: "Color" } }, required: ["color"] },
        run: (args) => {
          if (!LAMP_COLORS.includes(args.color)) throw new Error(`Unknown color: ${args.color}`);
          s.lamp.color = args.color; return true;
        } },
    ];
  }

  /** The JSON-RPC reply to `request`, or null when the firmware would drop it silently. */
  handle(request) {
    if (!request || typeof request !== "object" || request.jsonrpc !== "2.0") return null;
    if (typeof request.method !== "string" || request.method.startsWith("notifications")) return null;
    if (typeof request.id !== "number") return null; // string ids are dropped, as on the board
    if (request.params !== undefined && (typeof request.params !== "object" || request.params === null || Array.isArray(request.params))) return null;
    const id = Math.trunc(request.id);
    const params = request.params || {};
    const ok = (result) => ({ jsonrpc: "2.0", id, result });
    const fail = (message) => ({ jsonrpc: "2.0", id, error: { message } });
    switch (request.method) {
      case "initialize":
        return ok({ protocolVersion: "2024-11-05", capabilities: { tools: {} }, serverInfo: { name: "browser-board", version: "2.4.2" } });
      case "tools/list":
        return ok(this._page(typeof params.cursor === "string" ? params.cursor : ""));
      case "tools/call":
        return this._call(params, ok, fail);
      default:
        return fail(`Method not implemented: ${request.method}`);
    }
  }

  _page(cursor) {
    let start = cursor ? this.tools.findIndex((t) => t.name === cursor) : 0;
    if (start < 0) start = this.tools.length;
    const tools = [];
    let size = 20;
    for (let i = start; i < this.tools.length; i++) {
      const { run, ...tool } = this.tools[i];
      const bytes = JSON.stringify(tool).length + 1;
      if (tools.length && size + bytes > this.pageBytes) return { tools, nextCursor: this.tools[i].name };
      tools.push(tool);
      size += bytes;
    }
    return { tools };
  }

  _call(params, ok, fail) {
    if (typeof params.name !== "string") return fail("Missing name");
    const tool = this.tools.find((t) => t.name === params.name);
    if (!tool) return fail(`Unknown tool: ${params.name}`);
    const args = params.arguments === undefined ? {} : params.arguments;
    if (typeof args !== "object" || args === null || Array.isArray(args)) return fail("Invalid arguments");
    const clean = {};
    for (const [name, spec] of Object.entries(tool.inputSchema.properties)) {
      const value = args[name];
      const right = spec.type === "integer" ? typeof value === "number" : spec.type === "boolean" ? typeof value === "boolean" : typeof value === "string";
      if (!right) { if ((tool.inputSchema.required || []).includes(name)) return fail(`Missing valid argument: ${name}`); continue; }
      clean[name] = spec.type === "integer" ? Math.trunc(value) : value;
      if (spec.maximum !== undefined && clean[name] > spec.maximum) return fail(`Value exceeds maximum allowed: ${spec.maximum}`);
      if (spec.minimum !== undefined && clean[name] < spec.minimum) return fail(`Value is below minimum allowed: ${spec.minimum}`);
    }
    let text, isError = false;
    try {
      const out = tool.run(clean);
      text = typeof out === "boolean" ? String(out) : typeof out === "string" ? out : JSON.stringify(out);
    } catch (err) {
      this.onCall({ name: params.name, arguments: clean, result: err.message, isError: true });
      return fail(err.message);
    }
    this.onCall({ name: params.name, arguments: clean, result: text, isError });
    this.onChange(this.state);
    return ok({ content: [{ type: "text", text }], isError });
  }
}
