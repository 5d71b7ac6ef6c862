// The login page's "resend code" countdown: counts the server-given seconds down, then
// enables the button (without scripts the button stays disabled: reload the page).
(function () {
  var text = document.getElementById("resend-wait");
  var button = document.getElementById("resend");
  if (!text || !button) return;
  var left = parseInt(text.getAttribute("data-seconds") || "0", 10);
  function tick() {
    if (left <= 0) {
      text.textContent = text.getAttribute("data-ready");
      button.disabled = false;
      return;
    }
    text.textContent = text.getAttribute("data-wait").replace("{s}", String(left));
    left -= 1;
    setTimeout(tick, 1000);
  }
  tick();
})();
