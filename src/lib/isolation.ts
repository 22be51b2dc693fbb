// A static host that sends no COOP/COEP headers: the service worker (src/sw.ts) adds them, but the first visit's page
// was loaded before the worker controlled it, so it is not cross-origin isolated and WASM would run on one core.
// Reload that page once, as soon as the worker takes control, and only if the user has not started anything yet
// (a click, a key, a dropped file): nothing they did is lost. Once per tab session, so a browser that cannot be
// isolated this way (no `credentialless`) is not reloaded again; the page then says WASM runs on one core.
const ONCE = 'webtune-isolation-reload';

export function reloadIntoIsolation(): void {
  if (globalThis.crossOriginIsolated || !('serviceWorker' in navigator) || !isSecureContext) return;
  if (sessionStorage.getItem(ONCE)) return;
  let touched = false;
  const touch = () => (touched = true);
  for (const type of ['pointerdown', 'keydown', 'drop']) addEventListener(type, touch, { capture: true, once: true });
  const reload = () => {
    if (touched) return;
    sessionStorage.setItem(ONCE, '1');
    location.reload();
  };
  if (navigator.serviceWorker.controller) reload(); // controlled, yet not isolated: served before the worker added headers
  else navigator.serviceWorker.addEventListener('controllerchange', reload, { once: true });
}
