/* Progressive enhancement for the public forms; every page works without it.
   - The error summary takes focus, so screen readers read it first; its links focus their field.
   - A form is sent once: a second press while the first is on its way does nothing.
   - The request form shows only the statements of the legal basis chosen. */
(function () {
  "use strict";

  function each(list, fn) {
    Array.prototype.forEach.call(list, fn);
  }

  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) {
    summary.focus();
    each(summary.querySelectorAll("a[href^='#']"), function (link) {
      link.addEventListener("click", function (event) {
        var field = document.getElementById(link.getAttribute("href").slice(1));
        if (!field) {
          return;
        }
        event.preventDefault();
        // Show the question with the field: its legend, or its label.
        var fieldset = field.closest("fieldset");
        var legend = fieldset ? fieldset.querySelector("legend") : null;
        var label = document.querySelector("label[for='" + field.id + "']");
        (legend || label || field).scrollIntoView();
        field.focus({ preventScroll: true });
      });
    });
  }

  each(document.querySelectorAll("form[data-once]"), function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent") === "true") {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "true");
    });
  });
  // Back to a page kept in the browser's cache: it may be sent again.
  window.addEventListener("pageshow", function () {
    each(document.querySelectorAll("form[data-sent]"), function (form) {
      form.removeAttribute("data-sent");
    });
  });

  var radios = document.querySelectorAll("input[data-basis-radio]");
  if (radios.length) {
    var groups = document.querySelectorAll("fieldset[data-basis]");
    var none = document.querySelector("[data-statements-none]");
    var show = function () {
      var chosen = "";
      each(radios, function (radio) {
        if (radio.checked) {
          chosen = radio.value;
        }
      });
      each(groups, function (group) {
        group.hidden = group.getAttribute("data-basis") !== chosen;
      });
      if (none) {
        none.hidden = chosen !== "";
      }
    };
    each(radios, function (radio) {
      radio.addEventListener("change", show);
    });
    show();
  }
})();
