// The header of every page: the page links, the current one marked for screen readers.
const LINKS = [["/talk", "Talk"], ["/transcribe", "Transcribe live"], ["/transcribe-file", "Transcribe a file"], ["/record", "Record"], ["/dashboard", "Dashboard"], ["/", "Server"]];
const nav = document.querySelector("nav");
for (const [href, text] of LINKS) {
  const a = document.createElement("a");
  a.href = href; a.textContent = text;
  if (href === location.pathname) a.setAttribute("aria-current", "page");
  nav.append(a);
}
