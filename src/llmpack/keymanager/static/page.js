// The page's one script (its Content-Security-Policy allows no other, and nothing inline): copy buttons.
// Without it everything still works; the key and the snippets stay selectable by hand.
"use strict";

function textOf(element) {
  return element.tagName === "INPUT" ? element.value : element.textContent;
}

function selectAll(element) {
  if (element.tagName === "INPUT") {
    element.focus();
    element.select();
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

async function copy(button) {
  const source = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.dataset.copy + "-status");
  try {
    await navigator.clipboard.writeText(textOf(source));
    status.textContent = "Copied to the clipboard.";
  } catch (error) {
    selectAll(source);
    status.textContent = "The browser did not let the page copy: the text is selected, press Ctrl+C (⌘C).";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", () => copy(button));
  }
});
