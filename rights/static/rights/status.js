/* The status page, live: the time left counts down (every minute, every second in the last ten
   minutes), and while work is in progress the page asks the server every few seconds for news
   (rights:status_live), replacing its region when something has happened and saying so to screen
   readers; "This page updates itself" shows only while it does. Without this script the page is
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
  var ticker = null;
  var delay = every;
  var secondsUnder = parseInt(region.getAttribute("data-seconds-under"), 10) || 600;

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

  // The words for `seconds` left, as the server writes them (rights.web.status.time_left):
  // hours and minutes, and under `secondsUnder` minutes and seconds. Never "0" while time is left.
  function words(seconds) {
    var parts = [];
    if (seconds < secondsUnder) {
      if (Math.floor(seconds / 60)) {
        parts.push(unit(Math.floor(seconds / 60), "minute"));
      }
      if (seconds % 60) {
        parts.push(unit(seconds % 60, "second"));
      }
    } else {
      var minutes = Math.floor(seconds / 60);
      if (Math.floor(minutes / 60)) {
        parts.push(unit(Math.floor(minutes / 60), "hour"));
      }
      if (minutes % 60) {
        parts.push(unit(minutes % 60, "minute"));
      }
    }
    return parts.join(" ");
  }

  // Milliseconds until the words for `left` milliseconds change: the next second under
  // `secondsUnder`, the next minute above it.
  function untilChange(left) {
    var seconds = Math.ceil(left / 1000);
    var next = seconds < secondsUnder
      ? seconds - 1
      : Math.max(Math.floor(seconds / 60) * 60 - 1, secondsUnder - 1);
    return Math.max(20, left - next * 1000 + 20);
  }

  // Show the time left, and come back when its words change. True once the deadline is past.
  function countdown() {
    var due = false;
    var next = null;
    if (ticker !== null) {
      window.clearTimeout(ticker);
      ticker = null;
    }
    Array.prototype.forEach.call(region.querySelectorAll("[data-countdown]"), function (element) {
      var left = Date.parse(element.getAttribute("data-deadline")) - (Date.now() + offset);
      if (isNaN(left)) {
        return;
      }
      if (left <= 0) {
        due = true;
        return;
      }
      element.textContent = words(Math.ceil(left / 1000));
      var wait = untilChange(left);
      next = next === null ? wait : Math.min(next, wait);
    });
    if (next !== null) {
      ticker = window.setTimeout(tick, next);
    }
    return due;
  }

  function tick() {
    ticker = null;
    // The deadline has passed: ask at once what the page should say now.
    if (countdown() && timer === null && !closed) {
      poll();
    }
  }

  // "This page updates itself": only while it does.
  function liveNote() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-live-note]"), function (note) {
      note.hidden = closed;
    });
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
          liveNote();
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
        liveNote();
        // Scheduled first: a deadline just past does not make the countdown ask again at once.
        schedule();
        countdown();
      })
      .catch(function () {
        // The network or the server is away: ask again, less often.
        delay = Math.min(delay * 2, 60000);
        schedule();
      });
  }

  syncClock(region.getAttribute("data-now"));
  countdown();
  liveNote();
  schedule();
})();
