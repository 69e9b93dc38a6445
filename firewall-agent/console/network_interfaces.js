// Network interfaces: the list (filtered as you type), an interface's page (details, security
// groups, tags; Change description, Detach, Delete with AWS's refusals in words) and
// Actions → Change security groups (the VPC's groups as checkboxes, saved with
// ModifyNetworkInterfaceAttribute Groups).
'use strict';

/// An interface's (or instance's) groups as the tables print them: `sg-… (name), …`, each ID
/// a link to the group's page.
function groupLinks(groups) {
  const links = [];
  for (const g of groups || []) {
    if (links.length) links.push(', ');
    links.push(h('a', { href: `#/groups/${g.GroupId}`, class: 'group-link', title: g.GroupName }, g.GroupId), ` (${g.GroupName})`);
  }
  return links.length ? links : ['–'];
}

/// One interface, as DescribeNetworkInterfaces answers it.
async function interfaceById(id) {
  const answer = await call('DescribeNetworkInterfaces', { NetworkInterfaceIds: [id] });
  return answer.NetworkInterfaces[0];
}

/// AWS's refusals of detaching and deleting an interface, explained.
function interfaceRefusal(e) {
  const why = {
    OperationNotPermitted: 'The primary network interface (device index 0) stays with its instance until the instance is terminated.',
    'InvalidNetworkInterface.InUse': 'The interface is attached to an instance: detach it first.',
  }[e.code];
  return why ? `${why} (${e.code}: ${e.message})` : `${e.code}: ${e.message}`;
}

const NetworkInterfaces = {
  filter: '',

  async list() {
    const interfaces = (await call('DescribeNetworkInterfaces', {})).NetworkInterfaces;
    const selected = new Set();
    const search = h('input', { id: 'eni-search', placeholder: 'Filter network interfaces', value: NetworkInterfaces.filter });
    const rows = interfaces.map(n => {
      const a = n.Attachment;
      return h('tr', { 'data-interface-id': n.NetworkInterfaceId },
        h('td', {}, h('input', { type: 'checkbox', class: 'eni-select', onchange: (e) => { e.target.checked ? selected.add(n.NetworkInterfaceId) : selected.delete(n.NetworkInterfaceId); } })),
        h('td', {}, tagValue(n.TagSet, 'Name') || '–'),
        h('td', {}, h('a', { href: `#/network-interfaces/${n.NetworkInterfaceId}`, class: 'eni-link' }, n.NetworkInterfaceId)),
        h('td', { class: 'eni-subnet' }, n.SubnetId), h('td', { class: 'eni-vpc' }, n.VpcId),
        h('td', { class: 'eni-ip' }, n.PrivateIpAddress),
        h('td', { class: 'eni-status' }, n.Status),
        h('td', { class: 'eni-instance' }, a ? h('a', { href: `#/instances/${a.InstanceId}` }, a.InstanceId) : '–'),
        h('td', { class: 'eni-device-index' }, a ? String(a.DeviceIndex) : '–'),
        h('td', { class: 'eni-groups' }, groupLinks(n.Groups)),
        h('td', { class: 'eni-description' }, n.Description || '–'));
    });
    const refilter = () => {
      NetworkInterfaces.filter = search.value;
      const term = search.value.trim().toLowerCase();
      for (const row of rows) row.hidden = !!term && !row.textContent.toLowerCase().includes(term);
    };
    search.addEventListener('input', refilter);
    refilter();
    const change = () => {
      if (selected.size !== 1) { flash('Select one network interface.', false); return; }
      location.hash = `#/network-interfaces/${[...selected][0]}/change-groups`;
    };
    show(h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, `Network interfaces (${interfaces.length})`), h('span', { class: 'spacer' }),
        h('button', { id: 'eni-change-groups', onclick: change }, 'Actions → Change security groups')),
      h('div', { class: 'toolbar' }, search),
      h('table', {}, h('thead', {}, h('tr', {}, ['', 'Name', 'Network interface ID', 'Subnet ID', 'VPC ID', 'Private IPv4 address', 'Status',
        'Instance ID', 'Device index', 'Security groups', 'Description'].map(t => h('th', {}, t)))),
      h('tbody', { id: 'eni-rows' }, rows))));
  },

  /// An interface's page: its details, attachment, groups and tags, and its actions.
  async show(id) {
    const n = await interfaceById(id);
    const a = n.Attachment;
    const panel = h('div', { id: 'eni-panel' });
    const changeDescription = () => {
      const input = h('input', { id: 'eni-description-input', value: n.Description });
      const save = async () => {
        try {
          await call('ModifyNetworkInterfaceAttribute', { NetworkInterfaceId: id, Description: { Value: input.value } });
          navigate(`#/network-interfaces/${id}`, `Description of ${id} changed.`);
        } catch (e) { failed(e); }
      };
      panel.replaceChildren(h('div', { class: 'card' }, h('h3', {}, 'Change description'), h('label', {}, 'Description', input),
        h('div', { class: 'toolbar' }, h('button', { onclick: () => panel.replaceChildren() }, 'Cancel'),
          h('button', { class: 'primary', id: 'eni-description-save', onclick: save }, 'Save'))));
    };
    const detach = async () => {
      try {
        await call('DetachNetworkInterface', { AttachmentId: a.AttachmentId });
        navigate(`#/network-interfaces/${id}`, `${id} detached from ${a.InstanceId}.`);
      } catch (e) { flash(interfaceRefusal(e), false); }
    };
    const remove = async () => {
      try {
        await call('DeleteNetworkInterface', { NetworkInterfaceId: id });
        navigate('#/network-interfaces', `Network interface ${id} deleted.`);
      } catch (e) { flash(interfaceRefusal(e), false); }
    };
    const row = (k, v, cls) => h('tr', {}, h('th', {}, k), h('td', { class: cls }, v));
    const details = h('table', { id: 'eni-details' }, h('tbody', {},
      row('Network interface ID', n.NetworkInterfaceId, 'eni-id'),
      row('Description', n.Description || '–', 'eni-description'),
      row('Status', n.Status, 'eni-status'),
      row('Interface type', n.InterfaceType),
      row('Subnet ID', n.SubnetId, 'eni-subnet'),
      row('VPC ID', n.VpcId, 'eni-vpc'),
      row('Availability Zone', n.AvailabilityZone),
      row('Private IPv4 address', n.PrivateIpAddress, 'eni-ip'),
      row('Private IPv4 DNS', n.PrivateDnsName || '–'),
      row('IPv6 addresses', (n.Ipv6Addresses || []).map(x => x.Ipv6Address).join(', ') || '–', 'eni-ipv6'),
      row('MAC address', n.MacAddress, 'eni-mac'),
      row('Source/dest. check', n.SourceDestCheck ? 'true' : 'false'),
      row('Owner', n.OwnerId),
      row('Instance ID', a ? h('a', { href: `#/instances/${a.InstanceId}` }, a.InstanceId) : '–', 'eni-instance'),
      row('Device index', a ? String(a.DeviceIndex) : '–', 'eni-device-index'),
      row('Attachment ID', a ? a.AttachmentId : '–'),
      row('Attachment status', a ? a.Status : '–'),
      row('Delete on termination', a ? String(a.DeleteOnTermination) : '–'),
      row('Host interface (ours)', n.HostInterface || '–'),
      row('Namespace (ours)', n.Namespace || '–')));
    const groups = h('table', { id: 'eni-groups' }, h('thead', {}, h('tr', {}, h('th', {}, 'Security group ID'), h('th', {}, 'Security group name'))),
      h('tbody', {}, n.Groups.map(g => h('tr', { 'data-group-id': g.GroupId },
        h('td', {}, h('a', { href: `#/groups/${g.GroupId}`, class: 'group-link' }, g.GroupId)), h('td', {}, g.GroupName)))));
    const tags = h('table', { id: 'eni-tags' }, h('tbody', {}, (n.TagSet || []).map(t => h('tr', {}, h('td', {}, t.Key), h('td', {}, t.Value)))));
    show(h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, `${id}${n.Description ? ' - ' + n.Description : ''}`), h('span', { class: 'spacer' }),
        h('a', { href: `#/network-interfaces/${id}/change-groups` }, h('button', { id: 'eni-change-groups' }, 'Change security groups')),
        h('button', { id: 'eni-change-description', onclick: changeDescription }, 'Change description'),
        a ? h('button', { id: 'eni-detach', onclick: detach }, 'Detach') : null,
        h('button', { class: 'danger', id: 'eni-delete', onclick: remove }, 'Delete')),
      panel, h('h3', {}, 'Details'), details),
    h('div', { class: 'card' }, h('h3', {}, `Security groups (${n.Groups.length})`), groups),
    h('div', { class: 'card' }, h('h3', {}, 'Tags'), tags));
  },

  /// Change security groups: every group of the interface's VPC, the interface's own checked.
  async changeGroups(id) {
    const n = await interfaceById(id);
    const groups = (await call('DescribeSecurityGroups', { Filters: [{ Name: 'vpc-id', Values: [n.VpcId] }] })).SecurityGroups;
    const chosen = new Set(n.Groups.map(g => g.GroupId));
    const summary = h('div', { id: 'eni-groups-chosen', class: 'hint' });
    const summarize = () => { summary.textContent = `Selected: ${[...chosen].join(', ') || 'none'}`; };
    summarize();
    const rows = groups.map(g => h('tr', { 'data-group-id': g.GroupId },
      h('td', {}, h('input', { type: 'checkbox', class: 'eni-group-choice', value: g.GroupId, checked: chosen.has(g.GroupId),
        onchange: (e) => { e.target.checked ? chosen.add(g.GroupId) : chosen.delete(g.GroupId); summarize(); } })),
      h('td', {}, g.GroupId), h('td', {}, g.GroupName), h('td', {}, g.Description)));
    const search = h('input', { id: 'eni-groups-filter', placeholder: 'Find security groups' });
    search.addEventListener('input', () => {
      const term = search.value.trim().toLowerCase();
      for (const row of rows) row.hidden = !!term && !row.textContent.toLowerCase().includes(term);
    });
    const save = async () => {
      if (!chosen.size) { flash('Choose at least one security group.', false); return; }
      try {
        await call('ModifyNetworkInterfaceAttribute', { NetworkInterfaceId: id, Groups: [...chosen] });
        navigate(`#/network-interfaces/${id}`, `Security groups of ${id} changed.`);
      } catch (e) { failed(e); }
    };
    show(h('div', { class: 'card' }, h('h2', {}, `Change security groups: ${id}`),
      h('p', {}, `Network interface ${id} in ${n.VpcId}${n.Attachment ? `, attached to ${n.Attachment.InstanceId} at device index ${n.Attachment.DeviceIndex}` : ''}.`),
      h('h3', {}, 'Associated security groups'), h('div', { class: 'toolbar' }, search), summary,
      h('table', { id: 'eni-group-choices' }, h('thead', {}, h('tr', {}, ['', 'Security group ID', 'Security group name', 'Description'].map(t => h('th', {}, t)))),
        h('tbody', {}, rows)),
      h('div', { class: 'toolbar' }, h('a', { href: `#/network-interfaces/${id}` }, 'Cancel'),
        h('button', { class: 'primary', id: 'eni-groups-save', onclick: save }, 'Save'))));
  },
};
