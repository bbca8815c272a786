// Run in the Talk page by test_the_pages_mcp_server_follows_the_firmware.
(async () => {
  const { DemoBoard } = await import('/static/board-mcp.js');
  const board = new DemoBoard({ pageBytes: 600 });
  const rpc = (id, method, params) => board.handle({ jsonrpc: '2.0', id, method, params });
  const names = []; let cursor = '', pages = 0;
  do {
    const r = rpc(pages + 1, 'tools/list', { cursor }).result;
    names.push(...r.tools.map(t => t.name)); cursor = r.nextCursor || ''; pages++;
  } while (cursor && pages < 20);
  return {
    names, pages,
    init: rpc(1.7, 'initialize', {}),
    stringId: board.handle({ jsonrpc: '2.0', id: '1', method: 'initialize' }),
    notification: board.handle({ jsonrpc: '2.0', id: 3, method: 'notifications/x' }),
    unknown: rpc(4, 'tools/call', { name: 'self.nothing' }),
    missing: rpc(5, 'tools/call', { name: 'self.audio_speaker.set_volume', arguments: {} }),
    high: rpc(6, 'tools/call', { name: 'self.audio_speaker.set_volume', arguments: { volume: 101 } }),
    ok: rpc(7, 'tools/call', { name: 'self.lamp.set_color', arguments: { color: 'red' } }),
    other: rpc(8, 'resources/list'),
    state: board.state,
  };
})
