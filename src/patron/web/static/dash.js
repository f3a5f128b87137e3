// Dashboard charts: the page embeds its data as JSON (#dash-data); this draws it with ECharts.
(function () {
  "use strict";

  // Integer fen → "¥1,234.56", as the page's money filter writes amounts.
  function money(fen) {
    var n = Math.round(Number(fen) || 0);
    var sign = n < 0 ? "-" : "";
    n = Math.abs(n);
    var cents = n % 100;
    var yuan = String((n - cents) / 100).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return sign + "¥" + yuan + "." + (cents < 10 ? "0" : "") + cents;
  }

  function count(n) {
    return (Math.round(Number(n) || 0)).toLocaleString("en-US");
  }

  // A pie slice's tooltip: series, slice, value as `show` writes it, and its share.
  function slice(show) {
    return function (p) {
      var esc = echarts.format.encodeHTML;
      return esc(p.seriesName) + "<br>" + p.marker + esc(p.name) + ": " + show(p.value) +
        " (" + p.percent + "%)";
    };
  }

  function draw() {
    var source = document.getElementById("dash-data");
    if (!source || !window.echarts) return;
    var d = JSON.parse(source.textContent);
    var s = d.series;
    var charts = [];

    function chart(id, option) {
      var el = document.getElementById(id);
      if (!el) return;
      var c = echarts.init(el, null, { renderer: "canvas" });
      c.setOption(option);
      charts.push(c);
    }

    var axis = { type: "category", data: d.labels, boundaryGap: true };
    chart("chart-trend", {
      tooltip: { trigger: "axis" },
      legend: { data: [s.new_members, s.net_sales] },
      grid: { left: 8, right: 8, bottom: 8, top: 56, containLabel: true },
      xAxis: axis,
      yAxis: [
        { type: "value", name: s.new_members, minInterval: 1, axisLabel: { formatter: count } },
        { type: "value", name: s.net_sales, minInterval: 1, axisLabel: { formatter: money } },
      ],
      series: [
        { name: s.new_members, type: "bar", data: d.new_members, itemStyle: { color: "#8a1538" },
          tooltip: { valueFormatter: count } },
        { name: s.net_sales, type: "line", yAxisIndex: 1, data: d.net_sales_fen, smooth: true,
          itemStyle: { color: "#2f6db5" }, tooltip: { valueFormatter: money } },
      ],
    });
    chart("chart-points", {
      tooltip: { trigger: "axis" },
      legend: { data: [s.points_issued, s.points_redeemed, s.points_expired] },
      grid: { left: 8, right: 16, bottom: 8, top: 40, containLabel: true },
      xAxis: axis,
      yAxis: { type: "value", minInterval: 1, axisLabel: { formatter: count } },
      series: [
        { name: s.points_issued, type: "line", data: d.points_issued, itemStyle: { color: "#17663a" } },
        { name: s.points_redeemed, type: "line", data: d.points_redeemed, itemStyle: { color: "#2f6db5" } },
        { name: s.points_expired, type: "line", data: d.points_expired, itemStyle: { color: "#9a5b00" } },
      ],
    });
    chart("chart-tiers", {
      tooltip: { trigger: "item" },
      legend: { bottom: 0 },
      title: [
        { text: s.members, left: "25%", top: 0, textAlign: "center", textStyle: { fontSize: 13 } },
        { text: s.sales_share, left: "75%", top: 0, textAlign: "center", textStyle: { fontSize: 13 } },
      ],
      series: [
        { name: s.members, type: "pie", radius: ["32%", "62%"], center: ["25%", "50%"],
          label: { show: false }, tooltip: { formatter: slice(count) },
          data: d.tiers.map(function (t) { return { name: t.name, value: t.members }; }) },
        { name: s.sales_share, type: "pie", radius: ["32%", "62%"], center: ["75%", "50%"],
          label: { show: false }, tooltip: { formatter: slice(money) },
          data: d.tiers.map(function (t) { return { name: t.name, value: t.sales_fen }; }) },
      ],
    });
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.resize(); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
