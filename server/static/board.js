// Line board charts (Chart.js, served locally). Data comes from the JSON endpoint named
// in #board[data-source]; charts refresh whenever the live figures are swapped in.
//
// Units per hour: bars of what was built, a line of the plan (takt over working time).
// Step times: one box plot per station, drawn with floating bars (no plugin): a thin
// bar from the shortest to the longest step, a wide one from the first to the third
// quartile, a mark at the median and one at the standard time. Minutes.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || typeof Chart === "undefined") { return; }
  var tv = document.body.classList.contains("board-tv");
  Chart.defaults.color = "#e5e7eb";
  Chart.defaults.borderColor = "#334155";
  Chart.defaults.font.size = tv ? 20 : 14;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false;
  var hourly = null, cycles = null;

  function hoursShown(data) {
    // From the first to the last hour with a plan or an output, eight hours at least.
    var used = [];
    for (var h = 0; h < 24; h++) {
      if (data.hourly[h] > 0 || data.plan.hourly[h] > 0.05) { used.push(h); }
    }
    var first = used.length ? used[0] : 6, last = used.length ? used[used.length - 1] : 13;
    while (last - first < 7) { if (last < 23) { last++; } else { first--; } }
    var hours = [];
    for (var i = first; i <= last; i++) { hours.push(i); }
    return hours;
  }

  function drawHourly(data) {
    var hours = hoursShown(data);
    var labels = hours.map(function (h) { return String(h).padStart(2, "0") + "h"; });
    var actual = hours.map(function (h) { return data.hourly[h]; });
    // Without a calendar the plan is known up to now only: no line over later hours.
    var known = data.plan.source === "calendar" || data.plan.now_hour === null;
    var plan = hours.map(function (h) {
      return known || h <= data.plan.now_hour ? data.plan.hourly[h] : null;
    });
    var datasets = [
      { type: "bar", label: board.dataset.actualLabel || "actual", data: actual,
        backgroundColor: "#3b82f6", order: 2 },
      { type: "line", label: board.dataset.planLabel || "plan", data: plan,
        borderColor: "#f0b429", backgroundColor: "#f0b429", borderWidth: 3,
        pointRadius: tv ? 4 : 3, stepped: "middle", order: 1 }
    ];
    if (!hourly) {
      hourly = new Chart(document.getElementById("chart-hourly"), {
        data: { labels: labels, datasets: datasets },
        options: { plugins: { legend: { position: "bottom" } },
                   scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    } else {
      hourly.data.labels = labels;
      hourly.data.datasets = datasets;
      hourly.update();
    }
  }

  function minutes(s) { return Math.round(s / 6) / 10; }

  function drawCycles(data) {
    var codes = Object.keys(data.cycle_times);
    var boxes = codes.map(function (c) { return data.cycle_times[c].box.map(minutes); });
    var spans = boxes.map(function (b) { return b[4] - b[0]; });
    var mark = Math.max(0.05, Math.max.apply(null, spans.concat([1])) / 80);
    function around(v) { return [v - mark, v + mark]; }
    var datasets = [
      { label: board.dataset.rangeLabel || "range", grouped: false, barPercentage: 0.12,
        backgroundColor: "#9aa5b1", data: boxes.map(function (b) { return [b[0], b[4]]; }) },
      { label: board.dataset.quartilesLabel || "quartiles", grouped: false, barPercentage: 0.7,
        backgroundColor: "#3b82f6", data: boxes.map(function (b) { return [b[1], b[3]]; }) },
      { label: board.dataset.medianLabel || "median", grouped: false, barPercentage: 0.7,
        backgroundColor: "#f5f7fa", data: boxes.map(function (b) { return around(b[2]); }) },
      { label: board.dataset.standardLabel || "standard", grouped: false, barPercentage: 0.9,
        backgroundColor: "#f0b429",
        data: codes.map(function (c) { return around(minutes(data.cycle_times[c].standard)); }) }
    ];
    if (!cycles) {
      cycles = new Chart(document.getElementById("chart-cycles"), {
        type: "bar",
        data: { labels: codes, datasets: datasets },
        options: {
          indexAxis: "y",
          plugins: {
            legend: { position: "bottom" },
            tooltip: { callbacks: { label: function (ctx) {
              var b = boxes[ctx.dataIndex];
              return b ? "min " + b[0] + " · Q1 " + b[1] + " · median " + b[2] +
                " · Q3 " + b[3] + " · max " + b[4] : "";
            } } }
          },
          scales: { x: { beginAtZero: true, title: { display: true, text: "min" } } }
        }
      });
    } else {
      cycles.data.labels = codes;
      cycles.data.datasets = datasets;
      cycles.update();
    }
  }

  function load() {
    fetch(board.dataset.source, { credentials: "same-origin",
                                  headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) { drawHourly(data); drawCycles(data); })
      .catch(function (err) { console.warn("board data", err); });
  }

  load();
  var pending = null;
  document.body.addEventListener("htmx:sseMessage", function () {
    if (pending) { return; }  // one reload per burst of live updates
    pending = setTimeout(function () { pending = null; load(); }, 1000);
  });
})();
