// Member scores: the RFM grid (recency × frequency, members per cell) from #rfm-data.
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("rfm-data");
    var el = document.getElementById("chart-rfm");
    if (!source || !el || !window.echarts) return;
    var d = JSON.parse(source.textContent);
    var max = 0;
    var points = d.cells.map(function (c) {
      max = Math.max(max, c.members);
      return [c.r - 1, c.f - 1, c.members, c.segment];
    });
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      tooltip: {
        formatter: function (p) {
          var esc = echarts.format.encodeHTML;
          return esc(p.value[3]) + "<br>R " + (p.value[0] + 1) + " · F " + (p.value[1] + 1) +
            "<br>" + esc(d.labels.members) + ": " + p.value[2].toLocaleString("en-US");
        }
      },
      grid: { left: 60, right: 20, top: 20, bottom: 80 },
      xAxis: { type: "category", data: ["1", "2", "3", "4", "5"], name: d.labels.r,
        nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "category", data: ["1", "2", "3", "4", "5"], name: d.labels.f,
        nameLocation: "middle", nameGap: 36 },
      visualMap: { min: 0, max: Math.max(max, 1), calculable: true, orient: "horizontal",
        left: "center", bottom: 0 },
      series: [{
        type: "heatmap",
        data: points,
        label: { show: true, formatter: function (p) { return p.value[2]; } }
      }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
