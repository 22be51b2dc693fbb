// The app's service worker (built by vite-plugin-pwa's injectManifest into dist/sw.js). Offline: the app shell,
// the WASM binaries, the engine worker and the built-in demo model are precached, and every page navigation is
// answered with index.html. Cross-origin isolation on any host: each response it serves carries COOP and COEP,
// as the dev and preview servers send them, so that a static host that cannot set headers still gets threaded WASM
// (src/lib/isolation.ts reloads a first visit once, into the worker's hands). It makes no request of its own.
// A file the loader asks for that a precached model's folder does not hold (chat_template.jinja: optional) goes to the
// network as any request; offline, that request fails, and the folder's answer is then "not there" (404), which is
// what the server would have said: the demo model loads offline.
import { clientsClaim } from 'workbox-core';
import { addPlugins, cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute, type PrecacheEntry } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { ISOLATION_HEADERS } from './lib/isolation-headers';

declare const self: { __WB_MANIFEST: (string | PrecacheEntry)[]; location: Location; skipWaiting(): Promise<void> };

/** `response` with the isolation headers set; an opaque or errored one (no headers to set) as it is. */
function isolated(response: Response): Response {
  if (response.type === 'opaque' || response.type === 'error' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

addPlugins([{ handlerWillRespond: async ({ response }) => isolated(response) }]);
const manifest = self.__WB_MANIFEST; // the build writes the list here (once: injectManifest allows one mention)
precacheAndRoute(manifest);

/** The folder of a URL: origin and path up to its last slash. */
const folderOf = (url: URL) => url.origin + url.pathname.slice(0, url.pathname.lastIndexOf('/') + 1);
/** The folders the precache holds model files in (models/demo/). */
const modelFolders = new Set(
  manifest
    .map((e) => new URL(typeof e === 'string' ? e : e.url, self.location.href))
    .filter((url) => url.pathname.includes('/models/'))
    .map(folderOf),
);
registerRoute(
  ({ url }) => modelFolders.has(folderOf(url)),
  ({ request }) => fetch(request).catch(() => new Response(null, { status: 404, statusText: 'Not Found (offline)' })),
);
cleanupOutdatedCaches();
registerRoute(new NavigationRoute(createHandlerBoundToURL('index.html')));
void self.skipWaiting(); // a new version takes over at once (the page reloads into it: registerType autoUpdate)
clientsClaim();
