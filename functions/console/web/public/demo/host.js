// The host page's own script: its sign-in gives the portlet a token (here, typed or from ?token=).
const params = new URLSearchParams(location.search);
document.getElementById("contact").value = params.get("contact") || "demo-1";
document.getElementById("token").value = params.get("token") || "";
window.hostToken = () => document.getElementById("token").value;
const portlet = document.getElementById("portlet");
const log = document.getElementById("events");
for (const type of ["portal-access-code-generated", "portal-access-access-changed"]) {
  document.addEventListener(type, (e) => { log.textContent += type + " " + JSON.stringify(e.detail) + "\n"; });
}
const show = () => portlet.setAttribute("contact-id", document.getElementById("contact").value);
document.getElementById("pick").addEventListener("submit", (e) => { e.preventDefault(); show(); });
if (params.get("token")) show();
