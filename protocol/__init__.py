"""Sans-I/O wire contract of the xiaozhi-esp32 protocol.

Pydantic models of every JSON message (one discriminated union per direction), the binary audio
frame codec (versions 1/2/3), MCP JSON-RPC models, audio parameters and the Opus codec wrapper.
Nothing here touches sockets, asyncio or a clock.
"""
