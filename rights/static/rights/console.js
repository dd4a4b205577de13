// The review queue's "time left" column, kept current while the page is open: each cell carries
// the seconds left when the server drew it (data-left), and counts down from there by the
// browser's monotonic clock, so a wrong clock on the reviewer's machine changes nothing. The
// words are the server's own (rights/admin/queue.py time_left_words). Without script the cells
// keep the words they were drawn with.
// The admin puts its media in the page's head, so this waits for the list to be there.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var cells = document.querySelectorAll("[data-left]");
  if (!cells.length) {
    return;
  }
  var drawn = window.performance.now();

  function span(seconds) {
    var minutes = Math.floor(seconds / 60);
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    minutes = minutes % 60;
    if (days) {
      return days + " d " + hours + " h";
    }
    if (hours) {
      return hours + " h " + minutes + " min";
    }
    if (minutes) {
      return minutes + " min";
    }
    return "under a minute";
  }

  function update() {
    var elapsed = (window.performance.now() - drawn) / 1000;
    Array.prototype.forEach.call(cells, function (cell) {
      var left = Math.trunc(Number(cell.getAttribute("data-left")) - elapsed);
      if (isNaN(left)) {
        return;
      }
      var overdue = left <= 0;
      cell.textContent = overdue ? "overdue by " + span(-left) : span(left) + " left";
      cell.classList.toggle("overdue", overdue);
    });
  }

  window.setInterval(update, 15000);
});
