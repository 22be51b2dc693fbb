// The app's service worker (built by vite-plugin-pwa's injectManifest into dist/sw.js). Offline: the app shell,
// the WASM binaries, the engine worker and the built-in demo model are precached, and every page navigation is
// answered with index.html. Cross-origin isolation on any host: each response it serves carries COOP and COEP,
// as the dev and preview servers send them, so that a static host that cannot set headers still gets threaded WASM
// (src/lib/isolation.ts reloads a first visit once, into the worker's hands). It makes no request of its own.
import { clientsClaim } from 'workbox-core';
import { addPlugins, cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute, type PrecacheEntry } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { ISOLATION_HEADERS } from './lib/isolation-headers';

declare const self: { __WB_MANIFEST: (string | PrecacheEntry)[]; skipWaiting(): Promise<void> };

/** `response` with the isolation headers set; an opaque or errored one (no headers to set) as it is. */
function isolated(response: Response): Response {
  if (response.type === 'opaque' || response.type === 'error' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

addPlugins([{ handlerWillRespond: async ({ response }) => isolated(response) }]);
precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();
registerRoute(new NavigationRoute(createHandlerBoundToURL('index.html')));
void self.skipWaiting(); // a new version takes over at once (the page reloads into it: registerType autoUpdate)
clientsClaim();
