// The page frame: the session, the region menu, sign-out, and the hash routes of the views.
'use strict';

const routes = [
  [/^#\/groups\/create$/, () => Groups.create()],
  [/^#\/groups\/(sg-[0-9a-f]+)\/edit-(inbound|outbound)$/, (m) => Rules.edit(m[1], m[2])],
  [/^#\/groups\/(sg-[0-9a-f]+)\/copy$/, (m) => Groups.copy(m[1])],
  [/^#\/groups\/(sg-[0-9a-f]+)$/, (m) => GroupDetail.show(m[1])],
  [/^#\/instances$/, () => Instances.list()],
  [/^#\/instances\/(i-[0-9a-f]+)$/, (m) => Instances.show(m[1])],
  [/^#\/network-interfaces$/, () => NetworkInterfaces.list()],
  [/^#\/network-interfaces\/(eni-[0-9a-f]+)\/change-groups$/, (m) => NetworkInterfaces.changeGroups(m[1])],
  [/^#\/network-interfaces\/(eni-[0-9a-f]+)$/, (m) => NetworkInterfaces.show(m[1])],
  [/^#\/subnets$/, () => Subnets.list()],
  [/^#\/global$/, () => GlobalView.show()],
  [/^#\/dataplane$/, () => Dataplane.show()],
  [/^/, () => Groups.list()],
];

async function route() {
  Dataplane.stop();
  const hash = location.hash || '#/groups';
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('active', hash.startsWith(a.getAttribute('href')));
  }
  for (const [pattern, view] of routes) {
    const m = hash.match(pattern);
    if (m) {
      try { await view(m); } catch (e) { failed(e); }
      if (Console.pendingFlash) { flash(Console.pendingFlash); Console.pendingFlash = null; }
      // When the view was drawn (the page-load measurement reads it).
      document.body.dataset.drawn = String(Date.now());
      return;
    }
  }
}

async function start() {
  await loadSession();
  document.getElementById('who').textContent =
    `${Console.session.AccessKeyId} · ${Console.session.AccountId}`;
  const menu = document.getElementById('region');
  let regions = [];
  try {
    regions = (await call('DescribeRegions', { AllRegions: true })).Regions.map(r => r.RegionName);
  } catch (e) { failed(e); }
  if (!regions.includes(Console.region)) regions.unshift(Console.region);
  menu.replaceChildren(...regions.map(r => h('option', { value: r }, r)));
  menu.value = Console.region;
  menu.addEventListener('change', () => {
    Console.region = menu.value;
    localStorage.setItem('fw-console-region', menu.value);
    clearFlash();
    route();
  });
  document.getElementById('sign-out').addEventListener('click', async () => {
    await fetch('/console/api/sign-out', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'x-csrf-token': Console.session.CsrfToken },
    });
    location.href = '/console/sign-in';
  });
  window.addEventListener('hashchange', () => { clearFlash(); route(); });
  await route();
  document.body.dataset.ready = 'true';
}

start();
