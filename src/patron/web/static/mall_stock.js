// The mall's stock chart: units available per gift, stacked by warehouse, from #stock-data.
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("stock-data");
    var el = document.getElementById("chart-stock");
    if (!source || !el || !window.echarts) return;
    var d = JSON.parse(source.textContent);
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0 },
      grid: { left: 50, right: 20, top: 40, bottom: 60 },
      xAxis: { type: "category", data: d.gifts, axisLabel: { rotate: d.gifts.length > 8 ? 40 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: d.series.map(function (s) {
        return { name: s.name, type: "bar", stack: "stock", data: s.data };
      })
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
