// Clerk desk: read the member's QR code with the tablet camera (jsQR), where the browser has a
// camera API; without one the button stays hidden and a handheld scanner or typing still works.
(function () {
  "use strict";
  var stream = null;
  var target = null;

  function stop() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    var box = document.getElementById("scanner");
    if (box) box.hidden = true;
  }

  function scan(video, canvas) {
    if (!stream) return;
    if (video.readyState === video.HAVE_ENOUGH_DATA && window.jsQR) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      var g = canvas.getContext("2d", { willReadFrequently: true });
      g.drawImage(video, 0, 0, canvas.width, canvas.height);
      var img = g.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR(img.data, img.width, img.height, { inversionAttempts: "dontInvert" });
      if (found && found.data) {
        target.value = found.data;
        stop();
        if (target.form) target.form.requestSubmit ? target.form.requestSubmit() : target.form.submit();
        return;
      }
    }
    requestAnimationFrame(function () { scan(video, canvas); });
  }

  // The page's words for why the camera did not start (data-msg-* on #scanner, translated).
  function cameraError(box, err) {
    var name = err && err.name;
    var kind = "failed";
    if (name === "NotAllowedError" || name === "SecurityError") kind = "denied";
    else if (name === "NotFoundError" || name === "OverconstrainedError") kind = "missing";
    else if (name === "NotReadableError" || name === "AbortError") kind = "busy";
    return box.getAttribute("data-msg-" + kind) || box.getAttribute("data-msg-failed") || "";
  }

  function start(button) {
    var box = document.getElementById("scanner");
    target = document.getElementById(button.getAttribute("data-target"));
    if (!box || !target) return;
    var video = box.querySelector("video");
    var status = box.querySelector(".js-scan-status");
    box.hidden = false;
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        return video.play();
      })
      .then(function () { scan(video, document.createElement("canvas")); })
      .catch(function (err) {
        if (status) status.textContent = cameraError(box, err);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var hasCamera = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
    document.querySelectorAll(".js-scan").forEach(function (btn) {
      if (!hasCamera) return;
      btn.hidden = false;
      btn.addEventListener("click", function () { start(btn); });
    });
    document.querySelectorAll(".js-scan-close").forEach(function (btn) {
      btn.addEventListener("click", stop);
    });
    // A double tap on "Commit" sends one request (the server would replay it anyway).
    document.querySelectorAll("form").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        var btn = event.submitter;
        if (btn && btn.classList.contains("js-once")) {
          setTimeout(function () { btn.disabled = true; }, 0);
        }
      });
    });
  });
})();
