/* The status page, live: the time left counts down, and while work is in progress the page asks
   the server every few seconds for news (rights:status_live), replacing its region when
   something has happened and saying so to screen readers. Without this script the page is
   complete, and says to refresh it. */
(function () {
  "use strict";

  var region = document.getElementById("status-region");
  if (!region) {
    return;
  }
  var announce = document.getElementById("status-announce");
  var liveUrl = region.getAttribute("data-live-url");
  var every = Math.max(2, parseInt(region.getAttribute("data-poll-seconds"), 10) || 5) * 1000;
  var signature = region.getAttribute("data-signature");
  var closed = region.getAttribute("data-closed") === "true";
  var lang = document.documentElement.lang || "en";
  // The server's clock, not this device's, decides how much time is left.
  var offset = 0;
  var timer = null;
  var delay = every;

  function syncClock(serverNow) {
    var parsed = Date.parse(serverNow);
    if (!isNaN(parsed)) {
      offset = parsed - Date.now();
    }
  }

  function unit(count, name) {
    try {
      return new Intl.NumberFormat(lang, { style: "unit", unit: name, unitDisplay: "long" })
        .format(count);
    } catch (error) {
      return count + " " + name + (count === 1 ? "" : "s");
    }
  }

  function countdown() {
    var due = false;
    Array.prototype.forEach.call(region.querySelectorAll("[data-countdown]"), function (element) {
      var left = Date.parse(element.getAttribute("data-deadline")) - (Date.now() + offset);
      if (isNaN(left)) {
        return;
      }
      if (left <= 0) {
        due = true;
        return;
      }
      var minutes = Math.floor(left / 60000);
      var hours = Math.floor(minutes / 60);
      minutes = minutes % 60;
      var parts = [];
      if (hours) {
        parts.push(unit(hours, "hour"));
      }
      if (minutes || !hours) {
        parts.push(unit(minutes, "minute"));
      }
      element.textContent = parts.join(" ");
    });
    return due;
  }

  function schedule() {
    if (!closed) {
      timer = window.setTimeout(poll, delay);
    }
  }

  function poll() {
    timer = null;
    if (document.hidden) {
      schedule();
      return;
    }
    fetch(liveUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 404) {
          closed = true;
          return null;
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        if (!data) {
          return;
        }
        if (data.poll_seconds) {
          every = Math.max(2, data.poll_seconds) * 1000;
        }
        delay = every;
        syncClock(data.now);
        var changed = data.signature !== signature;
        // The deadline has passed: the page says so instead of counting down.
        var overdue = !data.time_left && region.querySelector("[data-countdown]") !== null;
        if (changed || overdue) {
          signature = data.signature;
          region.innerHTML = data.region;
        }
        if (changed && announce && data.case) {
          announce.textContent = data.case.meaning;
        }
        closed = Boolean(data.closed);
        countdown();
        schedule();
      })
      .catch(function () {
        // The network or the server is away: ask again, less often.
        delay = Math.min(delay * 2, 60000);
        schedule();
      });
  }

  syncClock(region.getAttribute("data-now"));
  countdown();
  window.setInterval(function () {
    if (countdown() && timer === null && !closed) {
      poll();
    }
  }, 15000);
  if (!closed) {
    Array.prototype.forEach.call(document.querySelectorAll("[data-live-note]"), function (note) {
      note.hidden = false;
    });
    schedule();
  }
})();
