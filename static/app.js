// phone-verify's hosted pages, enhanced. Every page works without this script: it only
// fills the code from the SMS where the browser can (WebOTP), counts down to when a new
// code may be asked for, and formats a US number as it is typed.
(function () {
  "use strict";

  // WebOTP: the SMS ends with "@host #code"; a supporting browser offers the code and we
  // fill it in. Submitting the form by hand cancels the request; errors (no support,
  // the person declined, a timeout) leave the field as it is.
  function webOtp(input, credentials) {
    if (!input || !("OTPCredential" in window) || !credentials) {
      return null;
    }
    var controller = new AbortController();
    var form = input.form;
    if (form) {
      form.addEventListener("submit", function () {
        controller.abort();
      });
    }
    return credentials
      .get({ otp: { transport: ["sms"] }, signal: controller.signal })
      .then(function (otp) {
        if (otp && otp.code) {
          input.value = otp.code;
          if (form && typeof form.requestSubmit === "function") {
            form.requestSubmit();
          }
        }
      })
      .catch(function () {})
      .then(function () {
        return controller;
      });
  }

  // Resend buttons carry data-wait: the seconds left of the server's resend cooldown.
  // They stay disabled until it has passed, showing the seconds left.
  function countdown(buttons, now) {
    buttons.forEach(function (button) {
      var wait = parseInt(button.getAttribute("data-wait"), 10);
      if (!(wait > 0)) {
        return;
      }
      var label = button.textContent;
      var until = now() + wait * 1000;
      button.disabled = true;
      var tick = function () {
        var left = Math.ceil((until - now()) / 1000);
        if (left <= 0) {
          button.disabled = false;
          button.textContent = label;
          button.removeAttribute("data-wait");
          return;
        }
        button.textContent = label + " (" + left + ")";
        setTimeout(tick, 250);
      };
      tick();
    });
  }

  // "2015550123" → "(201) 555-0123" for a number read in the US; a number typed with
  // its country code (+…) or a leading 1 is left as typed. Only while typing at the end,
  // so the caret never jumps.
  function formatUs(value) {
    if (/^\s*[+1]/.test(value)) {
      return value;
    }
    var digits = value.replace(/\D/g, "");
    if (digits.length === 0 || digits.length > 10) {
      return value;
    }
    if (digits.length <= 3) {
      return digits;
    }
    if (digits.length <= 6) {
      return "(" + digits.slice(0, 3) + ") " + digits.slice(3);
    }
    return "(" + digits.slice(0, 3) + ") " + digits.slice(3, 6) + "-" + digits.slice(6);
  }

  function formatAsTyped(input) {
    if (!input || input.getAttribute("data-region") !== "US") {
      return;
    }
    input.addEventListener("input", function (event) {
      var atEnd = input.selectionStart === input.value.length;
      if (!atEnd || (event && event.inputType === "deleteContentBackward")) {
        return;
      }
      var formatted = formatUs(input.value);
      if (formatted !== input.value) {
        input.value = formatted;
      }
    });
  }

  // A form shown again with an error focuses the field; put the caret after what was
  // typed, so the person can correct it from there.
  function caretToEnd(field) {
    if (field && field.getAttribute("aria-invalid") === "true" && field.setSelectionRange) {
      var end = field.value.length;
      field.setSelectionRange(end, end);
    }
  }

  function init() {
    caretToEnd(document.activeElement);
    webOtp(
      document.querySelector('input[autocomplete="one-time-code"]'),
      navigator.credentials
    );
    countdown(Array.prototype.slice.call(document.querySelectorAll("button[data-wait]")), Date.now);
    formatAsTyped(document.querySelector('input[type="tel"]'));
  }

  window.phoneVerify = { webOtp: webOtp, countdown: countdown, formatUs: formatUs };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
