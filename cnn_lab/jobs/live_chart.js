// The browser half of jobs/live.py: a job's progress bar and its train loss per step, redrawn in place every
// second from GET data.url (one small JSON), with no Streamlit rerun. When the job's status, its number of epochs
// or whether it is alive changes, it tells the page (the "changed" trigger), which reruns once to draw what follows.

function loadPlotly(src) {  // once per browser tab: Plotly's own script, served beside the app
  if (!window.cnnLabPlotly) {
    window.cnnLabPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve(window.Plotly);
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }
  return window.cnnLabPlotly;
}

export default function ({ data, parentElement, setTriggerValue }) {
  let root = parentElement.querySelector(".cnn-lab-live");
  if (!root) {
    root = document.createElement("div");
    root.className = "cnn-lab-live";
    root.innerHTML = '<p class="cnn-lab-live-text"></p><div class="cnn-lab-live-track"><div></div></div>' +
      '<p class="cnn-lab-live-title"><strong>Train loss per step</strong></p><div class="cnn-lab-live-chart"></div>';
    parentElement.appendChild(root);
  }
  // The legend, in HTML beside the title: drawn by Plotly it would be redrawn every second (see charts.py).
  const legend = root.querySelector(".cnn-lab-live-title");
  legend.querySelectorAll("span").forEach((span) => span.remove());
  for (const trace of data.figure.data) {
    const span = document.createElement("span");
    span.style.color = trace.line.color;
    const axis = trace.yaxis === "y2" ? " (right axis)" : "";
    span.textContent = `${trace.line.dash ? "┈┈" : "━━"} ${trace.name}${axis}`;
    legend.appendChild(span);
  }
  clearInterval(root.timer);  // Streamlit calls this again when the page reruns: one poll at a time
  const generation = (root.generation || 0) + 1;
  root.generation = generation;
  const current = () => root.generation === generation;
  const chart = root.querySelector(".cnn-lab-live-chart");

  const draw = (view) => {
    root.querySelector(".cnn-lab-live-text").textContent = view.text;
    root.querySelector(".cnn-lab-live-track div").style.width = `${100 * view.fraction}%`;
    const series = view.series, shown = series.x.length > 0;
    root.querySelector(".cnn-lab-live-title").style.display = shown ? "" : "none";
    chart.style.display = shown ? "" : "none";
    if (shown && window.Plotly) {
      const ys = [series.loss, series.smooth, series.lr];
      const traces = data.figure.data.map((trace, i) => ({ ...trace, x: series.x, y: ys[i] }));
      window.Plotly.react(chart, traces, data.figure.layout, data.config);
    }
  };
  const tell = (value) => {
    clearInterval(root.timer);
    root.generation += 1;  // nothing more from this poll: the page reruns and calls this again
    setTriggerValue("changed", value);
  };

  draw(data.view);
  loadPlotly(data.plotly).then(() => current() && draw(data.view));
  root.timer = setInterval(async () => {
    try {
      const response = await fetch(data.url, { cache: "no-store" });
      if (!current()) return;
      if (!response.ok) return tell("gone");  // the server restarted: the page says what became of the job
      const view = await response.json();
      if (!current()) return;
      draw(view);
      const before = data.view;
      if (view.status !== before.status || view.alive !== before.alive || view.epochs !== before.epochs) {
        tell(`${view.status} ${view.alive} ${view.epochs}`);
      }
    } catch (error) {
      // the server is busy or restarting: try again in a second
    }
  }, 1000);
  return () => { clearInterval(root.timer); root.generation += 1; };
}
