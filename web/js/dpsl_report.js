// Shows the DPSLReport table on the node after it runs.
//
// The core front end only renders `ui.text` for its own PreviewAny node, so without this the report
// would be visible only in the queue's JSON. A read-only <pre> DOM widget (public `addDOMWidget`
// API) keeps the table's monospace alignment; it is not serialized, so the node's widgets_values in
// saved workflows stay exactly the Python inputs.
// Served at /extensions/<pack>/js/, three levels below the site root.
import { app } from "../../../scripts/app.js";

const WIDGET = "report_view";

app.registerExtension({
  name: "golden_noise.dpsl.report",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== "DPSLReport") return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const pre = document.createElement("pre");
      pre.className = "dpsl-report";
      Object.assign(pre.style, {
        margin: "0",
        padding: "6px",
        overflow: "auto",
        fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace",
        fontSize: "11px",
        lineHeight: "1.3",
        whiteSpace: "pre",
        color: "var(--input-text, #ddd)",
        background: "var(--comfy-input-bg, #222)",
        borderRadius: "4px",
        userSelect: "text",
      });
      pre.textContent = "Queue the graph to see the report.";
      const widget = this.addDOMWidget(WIDGET, "dpsl_report", pre, {
        serialize: false,
        getValue: () => pre.textContent,
        setValue: (v) => { pre.textContent = v; },
        getMinHeight: () => 160,
      });
      widget.serialize = false;
      return result;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const widget = this.widgets?.find((w) => w.name === WIDGET);
      const text = message?.text;
      if (widget && text) {
        widget.value = Array.isArray(text) ? text.join("\n") : String(text);
        this.setDirtyCanvas?.(true, true);
      }
    };
  },
});
