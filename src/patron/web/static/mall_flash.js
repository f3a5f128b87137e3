// The flash sale's waiting page: a countdown to the start on the server's clock (the page
// carries the server's time; the offset to this device's clock is kept), and the redeem
// button enabled at the second the sale opens. The server still refuses an early attempt.
(function () {
  var box = document.querySelector("[data-flash-wait][data-state='waiting']");
  if (!box) return;
  var offset = Number(box.dataset.serverNow) - Date.now();
  var starts = Number(box.dataset.starts);
  var label = box.querySelector("[data-countdown]");
  var button = box.querySelector("[data-flash-redeem]");
  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }
  function tick() {
    var left = starts - (Date.now() + offset);
    if (left <= 0) {
      button.disabled = false;
      box.dataset.state = "open";
      if (label) label.hidden = true;
      return;
    }
    var s = Math.ceil(left / 1000);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    if (label) label.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s % 60);
    // wake at the next whole second of the countdown, so the button opens on time
    setTimeout(tick, Math.min(left, left % 1000 || 1000));
  }
  tick();
})();
