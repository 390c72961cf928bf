
"use strict";
// Builds the row list from the JSON in #page-rows. Row values only ever go into textContent,
// so a row's text is shown as it is and never becomes markup, a script or a link.
(() => {
  const PAGE_SIZE = 200;
  const [STREAM, CLIENT, KEY, ACTION, TEXT, SENDER, REASON] = [0, 1, 2, 3, 4, 5, 6];
  const settings = JSON.parse(document.getElementById("page-settings").textContent);
  const rows = JSON.parse(document.getElementById("page-rows").textContent);
  const search = document.getElementById("search");
  const actionFilter = document.getElementById("action");
  const list = document.getElementById("rows-list");
  const status = document.getElementById("status");
  const previous = document.getElementById("previous");
  const next = document.getElementById("next");
  // Without JavaScript the controls would do nothing, so they are shown only from here.
  document.getElementById("controls").hidden = false;

  // Grouped by stream, then client, each group in the order the rows came.
  const order = rows.map((row, index) => index);
  const compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  order.sort((a, b) =>
    compare(rows[a][STREAM], rows[b][STREAM]) || compare(rows[a][CLIENT], rows[b][CLIENT]) || a - b);
  const sorted = order.map((index) => rows[index]);
  const haystacks = sorted.map((row) => (row[CLIENT] + "\n" + row[KEY]).toLowerCase());

  let matching = sorted;
  let page = 0;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function keyLine(row) {
    return "key " + (row[KEY] || "(none)");
  }

  function item(row) {
    if (row[ACTION] === settings.delivered) {
      const message = element("div", "message");
      message.append(element("div", "bubble", row[TEXT]));
      message.append(element("div", "meta", row[SENDER] + " · " + keyLine(row)));
      return message;
    }
    const deadLettered = settings.deadLettered.includes(row[ACTION]);
    const card = element("div", deadLettered ? "row invalid" : "row held");
    card.append(element("div", "meta", row[ACTION] + " · " + keyLine(row)));
    if (row[REASON]) card.append(element("div", "reason", row[REASON]));
    if (row[TEXT]) card.append(element("div", "text", row[TEXT]));
    return card;
  }

  function render() {
    const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    const start = page * PAGE_SIZE;
    const shown = matching.slice(start, start + PAGE_SIZE);
    const fragment = document.createDocumentFragment();
    let stream = null;
    let client = null;
    let group = null;
    for (const row of shown) {
      if (row[STREAM] !== stream) {
        stream = row[STREAM];
        client = null;
        fragment.append(element("h3", "stream", "Stream " + stream));
      }
      if (row[CLIENT] !== client || group === null) {
        client = row[CLIENT];
        group = element("section", "client");
        group.append(element("h4", "client-id", client ? "Client " + client : "No client ID"));
        fragment.append(group);
      }
      group.append(item(row));
    }
    list.replaceChildren(fragment);
    previous.disabled = page === 0;
    next.disabled = page >= pages - 1;
    status.textContent = matching.length === 0
      ? "No rows match."
      : `Rows ${start + 1}–${start + shown.length} of ${matching.length} (page ${page + 1} of ${pages})`;
  }

  function filter() {
    const query = search.value.trim().toLowerCase();
    const action = actionFilter.value;
    matching = sorted.filter((row, index) =>
      (!action || row[ACTION] === action) && (!query || haystacks[index].includes(query)));
    page = 0;
    render();
  }

  let pending = 0;
  search.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(filter, 120);
  });
  actionFilter.addEventListener("change", filter);
  previous.addEventListener("click", () => { page -= 1; render(); });
  next.addEventListener("click", () => { page += 1; render(); });
  render();
})();
