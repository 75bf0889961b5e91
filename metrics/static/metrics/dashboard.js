/* The metrics dashboard's charts: Chart.js (vendored) drawing the JSON the page carries (#dashboard-data).
   The numbers are all in the page's tables already; this only adds the picture, and a click on a bar opens the
   cases behind it, as the tables' links do. Without Chart.js (or JavaScript) the page stays as it is. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function pct(value, digits) {
    return value === null || value === undefined ? "—" : (value * 100).toFixed(digits === undefined ? 1 : digits) + " %";
  }

  var ROUTE_COLOURS = { auto: "#2e7d32", quick_review: "#1e88e5", full_review: "#8e24aa", shadow: "#757575" };

  function opener(urls) {
    // A click on a bar or point opens the cases behind it.
    return function (event, elements) {
      if (elements.length && urls && urls[elements[0].index]) {
        window.location.href = urls[elements[0].index];
      }
    };
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) { return null; }
    return new window.Chart(canvas, config);
  }

  function start() {
    var picker = document.getElementById("id_category");
    if (picker) {
      picker.addEventListener("change", function () { picker.form.submit(); });
      var button = document.getElementById("pick-category");
      if (button) { button.hidden = true; }  // choosing a category is enough
    }
    var advisorBox = document.getElementById("advisor-rows");
    var current = advisorBox && advisorBox.querySelector(".hitl-row-current");
    if (current) {
      advisorBox.scrollTop = Math.max(0, current.offsetTop - advisorBox.clientHeight / 2);
    }
    var source = document.getElementById("dashboard-data");
    if (!source || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    var root = document.querySelector(".hitl-dash");
    root.classList.add("hitl-charts");

    var fg = cssVar("--body-fg", "#333");
    var quiet = cssVar("--body-quiet-color", "#666");
    var grid = cssVar("--hairline-color", "#e8e8e8");
    var link = cssVar("--link-fg", "#417690");
    var bad = getComputedStyle(root).getPropertyValue("--bad").trim() || "#c62828";
    var ok = getComputedStyle(root).getPropertyValue("--ok").trim() || "#2e7d32";
    Chart.defaults.color = quiet;
    Chart.defaults.borderColor = grid;
    Chart.defaults.font.size = 11;
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.animation = false;
    Chart.defaults.plugins.legend.labels.boxWidth = 10;
    Chart.defaults.plugins.legend.labels.color = fg;

    var percentAxis = function (max) {
      return { beginAtZero: true, suggestedMax: max, ticks: { callback: function (v) { return pct(v, 0); } } };
    };

    draw("chart-routes", {
      type: "bar",
      data: {
        labels: data.routes.labels,
        datasets: data.routes.series.map(function (s) {
          return { label: s.label, data: s.data, backgroundColor: ROUTE_COLOURS[s.route] || link, stack: "routes" };
        })
      },
      options: { scales: { x: { stacked: true, ticks: { maxTicksLimit: 12 } }, y: { stacked: true, beginAtZero: true } } }
    });

    draw("chart-histogram", {
      type: "bar",
      data: {
        labels: data.histogram.labels,
        datasets: [
          { label: "This window", data: data.histogram.current, backgroundColor: link },
          { label: "Previous window", data: data.histogram.previous, backgroundColor: grid, borderColor: quiet, borderWidth: 1 }
        ]
      },
      options: { onClick: opener(data.histogram.urls), scales: { y: { beginAtZero: true } } }
    });

    draw("chart-queues", {
      type: "bar",
      data: {
        labels: data.queues.labels,
        datasets: [{
          label: "Waiting now", data: data.queues.depth,
          backgroundColor: data.queues.overdue.map(function (n) { return n ? bad : link; })
        }]
      },
      options: {
        indexAxis: "y",
        onClick: opener(data.queues.urls),
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { afterLabel: function (ctx) {
            var age = data.queues.oldest[ctx.dataIndex];
            var overdue = data.queues.overdue[ctx.dataIndex];
            return "oldest " + age + (overdue ? ", " + overdue + " overdue" : "");
          } } }
        }
      }
    });

    data.fairness.forEach(function (seg, index) {
      var datasets = [{
        type: "bar", label: "Acted as proposed", data: seg.rates,
        backgroundColor: seg.rates.map(function (rate, i) {
          return seg.line !== null && seg.n[i] >= 20 && rate !== null && rate < seg.line ? bad : link;
        })
      }];
      if (seg.line !== null) {
        datasets.push({
          type: "line", label: "Four-fifths line (" + pct(seg.line, 0) + ")", data: seg.labels.map(function () { return seg.line; }),
          borderColor: bad, borderDash: [5, 4], borderWidth: 1.5, pointRadius: 0, fill: false
        });
      }
      draw("chart-fairness-" + index, {
        data: { labels: seg.labels, datasets: datasets },
        options: {
          onClick: opener(seg.urls),
          scales: { y: percentAxis(1) },
          plugins: { tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + pct(ctx.raw) + (ctx.datasetIndex === 0 ? " (n=" + seg.n[ctx.dataIndex] + ")" : ""); } } } }
        }
      });
    });

    draw("chart-versions", {
      type: "bar",
      data: {
        labels: data.versions.labels,
        datasets: [
          { label: "Overridden", data: data.versions.overridden, backgroundColor: bad },
          { label: "Flagged by audit", data: data.versions.flagged, backgroundColor: cssVar("--message-warning-bg", "#fc6") , borderColor: quiet, borderWidth: 1 },
          { label: "Shadow agreement", data: data.versions.shadow, backgroundColor: ok }
        ]
      },
      options: {
        scales: { y: percentAxis(0.3) },
        plugins: { tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + pct(ctx.raw); } } } }
      }
    });

    var currentIndex = data.advisor.labels.indexOf(data.advisor.current);
    draw("chart-advisor", {
      type: "line",
      data: {
        labels: data.advisor.labels,
        datasets: [
          { label: "Would act", data: data.advisor.would_act, borderColor: link, backgroundColor: link, yAxisID: "share",
            pointRadius: data.advisor.labels.map(function (_, i) { return i === currentIndex ? 5 : 0; }) },
          { label: "Error rate", data: data.advisor.error, borderColor: bad, backgroundColor: bad, yAxisID: "error", pointRadius: 0, spanGaps: false },
          { label: "Error, 95 % upper bound", data: data.advisor.upper, borderColor: bad, borderDash: [5, 4], pointRadius: 0,
            yAxisID: "error", fill: false, spanGaps: false }
        ]
      },
      options: {
        interaction: { mode: "index", intersect: false },
        onClick: function (event, elements) {
          if (!elements.length) { return; }
          var row = document.getElementById("advisor-" + data.advisor.labels[elements[0].index]);
          if (row) { row.scrollIntoView({ block: "center" }); row.querySelector("th a").focus(); }
        },
        scales: {
          x: { title: { display: true, text: "auto threshold (current " + data.advisor.current + ")" }, ticks: { maxTicksLimit: 11 } },
          share: { position: "left", min: 0, max: 1, title: { display: true, text: "would act" }, ticks: { callback: function (v) { return pct(v, 0); } } },
          error: { position: "right", beginAtZero: true, suggestedMax: 0.1, grid: { drawOnChartArea: false },
                   title: { display: true, text: "error rate" }, ticks: { callback: function (v) { return pct(v, 0); } } }
        },
        plugins: { tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + (ctx.raw === null ? "too little data" : pct(ctx.raw)); } } } }
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
