// Line board charts (Chart.js, served locally). Data comes from the JSON endpoint named
// in #board[data-source]; charts refresh whenever the live figures are swapped in.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || typeof Chart === "undefined") { return; }
  var hourly = null, cycles = null;

  function draw(data) {
    var hours = data.hourly.map(function (_, h) { return String(h).padStart(2, "0") + "h"; });
    if (!hourly) {
      hourly = new Chart(document.getElementById("chart-hourly"), {
        type: "bar",
        data: { labels: hours, datasets: [{ label: "units", data: data.hourly }] },
        options: { animation: false, plugins: { legend: { display: false } },
                   scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    } else {
      hourly.data.datasets[0].data = data.hourly;
      hourly.update();
    }
    var codes = Object.keys(data.cycle_times);
    var datasets = codes.map(function (code) {
      var c = data.cycle_times[code];
      return { label: code + " (p90 " + c.p90 + " s, std " + c.standard + " s)",
               data: c.histogram.map(function (b) { return { x: (b[0] + b[1]) / 2, y: b[2] }; }) };
    });
    if (!cycles) {
      cycles = new Chart(document.getElementById("chart-cycles"), {
        type: "line",
        data: { datasets: datasets },
        options: { animation: false, parsing: true,
                   scales: { x: { type: "linear", title: { display: true, text: "s" } },
                             y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    } else {
      cycles.data.datasets = datasets;
      cycles.update();
    }
  }

  function load() {
    fetch(board.dataset.source, { credentials: "same-origin",
                                  headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(draw)
      .catch(function (err) { console.warn("board data", err); });
  }

  load();
  var pending = null;
  document.body.addEventListener("htmx:sseMessage", function () {
    if (pending) { return; }  // one reload per burst of live updates
    pending = setTimeout(function () { pending = null; load(); }, 1000);
  });
})();
