// page.evaluate(this, [pack folder, template name]) in the editor: opens a template as the template browser
// does (fetch from /api/workflow_templates, then app.loadGraphData with the view saved in the file), waits for
// the previews it loads (Load Video's clip, Load Image's picture) and for the canvas to draw, then reports what
// a user sees: each node's bounds (title bar included) in graph and screen pixels, its size against the size its
// widgets need, and anything drawn over it (another node's preview, a menu, the minimap, the window's edge).
async ([pack, name]) => {
  const app = window.app;
  const response = await fetch(app.api.apiURL(`/workflow_templates/${pack}/${name}.json`));
  await app.loadGraphData(await response.json(), true, true, name);

  const loaded = (n) =>
    n.type === "LoadVideo" ? n.videoContainer?.querySelector("video")?.readyState >= 2
    : n.type === "LoadImage" ? n.imgs?.[0]?.naturalWidth > 0
    : true;
  const deadline = performance.now() + 20000;
  while (!app.graph.nodes.every(loaded) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const frame = () => new Promise((r) => requestAnimationFrame(r));
  app.canvas.setDirty(true, true);
  for (let i = 0; i < 4; i++) await frame();  // DOM widgets follow the canvas one draw later

  const canvas = app.canvas.canvas;
  const area = canvas.getBoundingClientRect();
  const { offset, scale } = app.canvas.ds;
  const nodes = app.graph.nodes.map((n) => {
    const b = Array.from(n.getBounding());
    const screen = [area.left + (b[0] + offset[0]) * scale, area.top + (b[1] + offset[1]) * scale, b[2] * scale, b[3] * scale];
    const own = (n.widgets ?? []).map((w) => w.element).filter(Boolean);
    const over = {};
    for (let x = screen[0] + 2; x < screen[0] + screen[2] - 1; x += 12) {
      for (let y = screen[1] + 2; y < screen[1] + screen[3] - 1; y += 12) {
        const el = document.elementFromPoint(x, y);
        if (el === canvas || (el && own.some((o) => o.contains(el) || el.contains(o)))) continue;
        const what = el ? `<${el.tagName.toLowerCase()} class="${String(el.className).slice(0, 40)}">` : "outside the window";
        over[what] = (over[what] ?? 0) + 1;
      }
    }
    return { id: n.id, title: n.title, bounds: b, screen, size: [...n.size], needs: Array.from(n.computeSize()), over };
  });
  return { nodes, area: [area.left, area.top, area.width, area.height], ds: { offset: [...offset], scale } };
}
