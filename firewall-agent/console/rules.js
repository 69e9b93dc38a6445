// Rules as the console edits them: the type presets, the Source/Destination choices, rows ↔
// IpPermissions, the Anywhere warning, and the "Edit inbound/outbound rules" page (Preview
// changes = a dry run of EditSecurityGroupRules; Save = the same call).
'use strict';

const PRESETS = [
  ['Custom TCP', 'tcp', null], ['Custom UDP', 'udp', null], ['Custom ICMP - IPv4', 'icmp', null],
  ['Custom protocol', null, null], ['All traffic', '-1', [-1, -1]],
  ['All TCP', 'tcp', [0, 65535]], ['All UDP', 'udp', [0, 65535]],
  ['All ICMP - IPv4', 'icmp', [-1, -1]], ['All ICMP - IPv6', '58', [-1, -1]],
  ['ICMP Echo Request', 'icmp', [8, -1]],
  ['SSH', 'tcp', [22, 22]], ['SMTP', 'tcp', [25, 25]], ['DNS (UDP)', 'udp', [53, 53]],
  ['DNS (TCP)', 'tcp', [53, 53]], ['HTTP', 'tcp', [80, 80]], ['POP3', 'tcp', [110, 110]],
  ['IMAP', 'tcp', [143, 143]], ['LDAP', 'tcp', [389, 389]], ['HTTPS', 'tcp', [443, 443]],
  ['SMB', 'tcp', [445, 445]], ['SMTPS', 'tcp', [465, 465]], ['IMAPS', 'tcp', [993, 993]],
  ['POP3S', 'tcp', [995, 995]], ['MSSQL', 'tcp', [1433, 1433]], ['Oracle-RDS', 'tcp', [1521, 1521]],
  ['NFS', 'tcp', [2049, 2049]], ['MYSQL/Aurora', 'tcp', [3306, 3306]], ['RDP', 'tcp', [3389, 3389]],
  ['PostgreSQL', 'tcp', [5432, 5432]], ['Redshift', 'tcp', [5439, 5439]],
  ['WinRM-HTTP', 'tcp', [5985, 5985]], ['WinRM-HTTPS', 'tcp', [5986, 5986]],
];

const PROTOCOL_NAMES = { '-1': 'All', tcp: 'TCP', udp: 'UDP', icmp: 'ICMP', '58': 'ICMPv6', icmpv6: 'ICMPv6' };

/// The preset a rule is shown as (the first whose protocol and ports match, else Custom …).
function presetOf(protocol, from, to) {
  if (protocol === '-1') return 'All traffic';
  const exact = PRESETS.find(([, p, ports]) => p === protocol && ports && ports[0] === from && ports[1] === to);
  if (exact) return exact[0];
  if (protocol === 'tcp') return 'Custom TCP';
  if (protocol === 'udp') return 'Custom UDP';
  if (protocol === 'icmp') return 'Custom ICMP - IPv4';
  return 'Custom protocol';
}

function portText(protocol, from, to) {
  if (protocol === '-1' || from === undefined || from === null) return 'All';
  if (protocol === 'icmp' || protocol === '58' || protocol === 'icmpv6') {
    if (from === -1) return 'All';
    return to === -1 ? String(from) : `${from}/${to}`;
  }
  if (from === 0 && to === 65535) return '0 - 65535';
  return from === to ? String(from) : `${from} - ${to}`;
}

/// The peer of a rule (DescribeSecurityGroupRules' view) as the editor's text.
function peerOf(rule) {
  return rule.CidrIpv4 || rule.CidrIpv6 || rule.PrefixListId ||
    (rule.ReferencedGroupInfo && rule.ReferencedGroupInfo.GroupId) || '';
}

/// An editor row from a rule view (or a new row).
function rowOf(rule) {
  if (!rule) return { id: null, preset: 'Custom TCP', protocol: 'tcp', ports: '', peer: '', description: '' };
  return {
    id: rule.SecurityGroupRuleId,
    preset: presetOf(rule.IpProtocol, rule.FromPort, rule.ToPort),
    protocol: rule.IpProtocol,
    ports: portText(rule.IpProtocol, rule.FromPort, rule.ToPort),
    peer: peerOf(rule),
    description: rule.Description || '',
    original: rule,
  };
}

/// A row's ports as [from, to], or an error message.
function portsOf(row) {
  if (row.protocol === '-1') return [-1, -1];
  const preset = PRESETS.find(([name]) => name === row.preset);
  if (preset && preset[2]) return preset[2];
  const text = row.ports.trim();
  const icmp = row.protocol === 'icmp' || row.protocol === '58';
  if (icmp) {
    if (text === '' || text.toLowerCase() === 'all') return [-1, -1];
    const [type, code] = text.split('/');
    if (!/^\d+$/.test(type) || (code !== undefined && !/^\d+$/.test(code))) return 'an ICMP type, or type/code';
    return [Number(type), code === undefined ? -1 : Number(code)];
  }
  if (row.protocol !== 'tcp' && row.protocol !== 'udp') return [-1, -1];
  const m = text.match(/^(\d+)(?:\s*-\s*(\d+))?$/);
  if (!m) return 'a port (22) or a range (1024 - 2048)';
  const from = Number(m[1]), to = Number(m[2] === undefined ? m[1] : m[2]);
  if (from > 65535 || to > 65535 || from > to) return 'ports 0 to 65535, the first not above the last';
  return [from, to];
}

/// The IpPermission of one row (one peer), for AuthorizeSecurityGroup*/EditSecurityGroupRules.
function permissionOf(row) {
  const ports = portsOf(row);
  if (typeof ports === 'string') throw new Error(`Port range: ${ports}.`);
  if (!row.protocol) throw new Error('Choose a protocol.');
  const permission = { IpProtocol: row.protocol };
  if (row.protocol !== '-1') { permission.FromPort = ports[0]; permission.ToPort = ports[1]; }
  const peer = row.peer.trim();
  const description = row.description.trim() || undefined;
  if (!peer) throw new Error('Every rule needs a source or destination.');
  if (peer.startsWith('sg-')) permission.UserIdGroupPairs = [{ GroupId: peer, Description: description }];
  else if (peer.startsWith('pl-')) permission.PrefixListIds = [{ PrefixListId: peer, Description: description }];
  else if (peer.includes(':')) permission.Ipv6Ranges = [{ CidrIpv6: peer, Description: description }];
  else permission.IpRanges = [{ CidrIp: peer, Description: description }];
  return permission;
}

/// Whether a row differs from its rule in protocol, ports or peer (so saving replaces the rule).
function replaced(row) {
  const r = row.original;
  const ports = portsOf(row);
  const from = r.IpProtocol === '-1' ? -1 : r.FromPort, to = r.IpProtocol === '-1' ? -1 : r.ToPort;
  return row.protocol !== r.IpProtocol || typeof ports === 'string' ||
    ports[0] !== from || ports[1] !== to || row.peer.trim() !== peerOf(r);
}

/// The console's warning for Anywhere on SSH or RDP.
function anywhereWarning(row, inbound) {
  const peer = row.peer.trim();
  if (!inbound || (peer !== '0.0.0.0/0' && peer !== '::/0')) return null;
  const ports = portsOf(row);
  if (typeof ports === 'string') return null;
  const covers = (p) => row.protocol === '-1' || (row.protocol === 'tcp' && ports[0] <= p && p <= ports[1]);
  if (!covers(22) && !covers(3389)) return null;
  return 'Rules with source of 0.0.0.0/0 or ::/0 allow all IP addresses to access your instance. ' +
    'We recommend setting security group rules to allow access from known IP addresses only.';
}

/// A rule-editor table over `rows` (edited in place). `peers` completes the Custom peer; `ipv6`
/// offers Anywhere-IPv6.
function ruleEditor(rows, { inbound, peers = [], ipv6 = false, onchange = () => {} }) {
  const listId = 'peers-' + Math.random().toString(36).slice(2);
  const table = h('table', { class: 'rule-editor' });
  const body = h('tbody');
  const redraw = () => {
    body.replaceChildren(...rows.map((row, i) => editorRow(row, i)));
    onchange();
  };
  const editorRow = (row, i) => {
    const tr = h('tr', { 'data-rule-id': row.id || '' });
    const warning = h('div', { class: 'warning anywhere-warning', hidden: true });
    const portError = h('div', { class: 'invalid port-error', hidden: true });
    const ports = h('input', { class: 'rule-ports', value: row.ports });
    const protocol = h('input', { class: 'rule-protocol', value: row.protocol || '', size: 4 });
    const check = () => {
      const p = portsOf(row);
      portError.hidden = typeof p !== 'string';
      portError.textContent = typeof p === 'string' ? `Enter ${p}.` : '';
      const w = anywhereWarning(row, inbound);
      warning.hidden = !w;
      warning.textContent = w || '';
      const preset = PRESETS.find(([name]) => name === row.preset);
      ports.disabled = !!(preset && preset[2]) || !['tcp', 'udp', 'icmp', '58'].includes(row.protocol);
      protocol.disabled = row.preset !== 'Custom protocol';
      onchange();
    };
    const type = h('select', { class: 'rule-type' }, PRESETS.map(([name]) => h('option', { value: name }, name)));
    type.value = row.preset;
    type.addEventListener('change', () => {
      const [, p, range] = PRESETS.find(([name]) => name === type.value);
      row.preset = type.value;
      row.protocol = p === null ? (row.protocol && row.preset === 'Custom protocol' ? row.protocol : '') : p;
      row.ports = range ? portText(p, range[0], range[1]) : '';
      ports.value = row.ports;
      protocol.value = row.protocol;
      check();
    });
    protocol.addEventListener('input', () => { row.protocol = protocol.value.trim(); check(); });
    ports.addEventListener('input', () => { row.ports = ports.value; check(); });
    const peer = h('input', { class: 'rule-peer', value: row.peer, list: listId, placeholder: 'CIDR, sg- or pl-' });
    peer.addEventListener('input', () => { row.peer = peer.value; check(); });
    const choices = [['custom', 'Custom'], ['anywhere-ipv4', 'Anywhere-IPv4']];
    if (ipv6) choices.push(['anywhere-ipv6', 'Anywhere-IPv6']);
    choices.push(['my-ip', 'My IP']);
    const kind = h('select', { class: 'rule-peer-kind' }, choices.map(([v, t]) => h('option', { value: v }, t)));
    kind.addEventListener('change', () => {
      const value = { 'anywhere-ipv4': '0.0.0.0/0', 'anywhere-ipv6': '::/0' }[kind.value];
      if (value) row.peer = value;
      if (kind.value === 'my-ip') {
        const ip = Console.session.SourceIp || '';
        row.peer = ip.includes(':') ? `${ip}/128` : `${ip}/32`;
      }
      peer.value = row.peer;
      check();
    });
    const description = h('input', { class: 'rule-description', value: row.description });
    description.addEventListener('input', () => { row.description = description.value; onchange(); });
    const remove = h('button', { class: 'rule-delete', type: 'button', onclick: () => { rows.splice(i, 1); redraw(); } }, 'Delete');
    tr.append(
      h('td', {}, h('code', {}, row.id || '–')),
      h('td', {}, type), h('td', {}, protocol), h('td', {}, ports, portError),
      h('td', {}, kind, peer, warning), h('td', {}, description), h('td', {}, remove));
    setTimeout(check);
    return tr;
  };
  table.append(h('thead', {}, h('tr', {},
    ['Security group rule ID', 'Type', 'Protocol', 'Port range', inbound ? 'Source' : 'Destination', 'Description - optional', ''].map(t => h('th', {}, t)))), body);
  const add = h('button', { type: 'button', class: 'rule-add', onclick: () => { rows.push(rowOf(null)); redraw(); } }, 'Add rule');
  redraw();
  return h('div', {}, table, h('datalist', { id: listId }, peers.map(p => h('option', { value: p.value }, p.label))), add);
}

/// The peers the Custom field completes: the region's groups and prefix lists.
async function peerChoices() {
  const [groups, lists] = await Promise.all([
    call('DescribeSecurityGroups', {}), call('DescribeManagedPrefixLists', {}).catch(() => ({ PrefixLists: [] })),
  ]);
  return groups.SecurityGroups.map(g => ({ value: g.GroupId, label: g.GroupName }))
    .concat((lists.PrefixLists || []).map(l => ({ value: l.PrefixListId, label: l.PrefixListName })));
}

async function vpcHasIpv6(vpcId) {
  const vpcs = await call('DescribeVpcs', { VpcIds: [vpcId] });
  return ((vpcs.Vpcs[0] || {}).Ipv6CidrBlockAssociationSet || []).length > 0;
}

/// The EditSecurityGroupRules members of the edited rows against the rules they started from.
function editOf(groupId, direction, rules, rows) {
  const kept = new Set(rows.filter(r => r.id).map(r => r.id));
  const members = { GroupId: groupId, Direction: direction === 'inbound' ? 'ingress' : 'egress',
    SecurityGroupRuleDescriptions: [], RevokeSecurityGroupRuleIds: [], IpPermissions: [] };
  for (const rule of rules) if (!kept.has(rule.SecurityGroupRuleId)) members.RevokeSecurityGroupRuleIds.push(rule.SecurityGroupRuleId);
  for (const row of rows) {
    if (!row.id) { members.IpPermissions.push(permissionOf(row)); continue; }
    if (replaced(row)) {
      members.RevokeSecurityGroupRuleIds.push(row.id);
      members.IpPermissions.push(permissionOf(row));
    } else if (row.description.trim() !== (row.original.Description || '')) {
      members.SecurityGroupRuleDescriptions.push({ SecurityGroupRuleId: row.id, Description: row.description.trim() });
    }
  }
  return members;
}

function ruleLine(rule) {
  return `${PROTOCOL_NAMES[rule.IpProtocol] || rule.IpProtocol} ${portText(rule.IpProtocol, rule.FromPort, rule.ToPort)} ` +
    `${rule.IsEgress ? 'to' : 'from'} ${peerOf(rule)}` + (rule.Description ? ` (${rule.Description})` : '');
}

/// The dry run's preview: a rule in both lists (same sgr- ID) changed in place (its
/// description); the others are added or removed.
function previewView(p) {
  const id = (r) => r.SecurityGroupRule.SecurityGroupRuleId;
  const addedIds = new Set(p.RulesAdded.map(id)), removedIds = new Set(p.RulesRemoved.map(id));
  const added = p.RulesAdded.filter(r => !removedIds.has(id(r)));
  const removed = p.RulesRemoved.filter(r => !addedIds.has(id(r)));
  const inPlace = p.RulesAdded.filter(r => removedIds.has(id(r)));
  const flows = p.FlowsNoLongerAllowed || [];
  const flowLine = (f) => `${f.Protocol} ${f.Source}:${f.SourcePort} → ${f.Destination}:${f.DestinationPort} (${f.Interface}, ${f.Direction})`;
  return h('div', { class: 'card preview', id: 'preview' },
    h('h3', {}, 'Preview changes'),
    h('h4', {}, `Rules added (${added.length})`),
    h('ul', { id: 'preview-added' }, added.map(r => h('li', { class: 'added' }, ruleLine(r.SecurityGroupRule)))),
    h('h4', {}, `Rules removed (${removed.length})`),
    h('ul', { id: 'preview-removed' }, removed.map(r => h('li', { class: 'removed' }, `${id(r)}: ${ruleLine(r.SecurityGroupRule)}`))),
    h('h4', {}, `Rules changed in place (${inPlace.length})`),
    h('ul', { id: 'preview-described' }, inPlace.map(r => h('li', { class: 'described' }, `${id(r)}: ${ruleLine(r.SecurityGroupRule)}`))),
    h('h4', {}, `Tracked flows the new rules no longer allow (${flows.length})`),
    h('ul', { id: 'preview-flows' }, flows.map(f => h('li', {}, flowLine(f)))));
}

const Rules = {
  /// The "Edit inbound rules" / "Edit outbound rules" page of a group.
  async edit(groupId, direction) {
    const inbound = direction === 'inbound';
    const [groups, described, peers] = await Promise.all([
      call('DescribeSecurityGroups', { GroupIds: [groupId] }),
      call('DescribeSecurityGroupRules', { Filters: [{ Name: 'group-id', Values: [groupId] }] }),
      peerChoices(),
    ]);
    const group = groups.SecurityGroups[0];
    const rules = described.SecurityGroupRules.filter(r => r.IsEgress === !inbound);
    const rows = rules.map(rowOf);
    const ipv6 = await vpcHasIpv6(group.VpcId);
    const previewBox = h('div');
    const flush = h('input', { type: 'checkbox', id: 'flush-flows' });
    const members = () => editOf(groupId, direction, rules, rows);
    const editor = ruleEditor(rows, { inbound, peers, ipv6, onchange: () => previewBox.replaceChildren() });
    const doPreview = async () => {
      try { const m = members(); previewBox.replaceChildren(previewView(await preview('EditSecurityGroupRules', m))); } catch (e) { failed(e); }
    };
    const save = async () => {
      try {
        const m = members();
        if (!m.SecurityGroupRuleDescriptions.length && !m.RevokeSecurityGroupRuleIds.length && !m.IpPermissions.length) {
          location.hash = `#/groups/${groupId}`; return;
        }
        if (flush.checked) m.FlushFlows = true;
        await call('EditSecurityGroupRules', m);
        flashNext(`${inbound ? 'Inbound' : 'Outbound'} security group rules successfully modified on security group (${groupId} | ${group.GroupName})`);
        location.hash = `#/groups/${groupId}`;
      } catch (e) { failed(e); }
    };
    show(h('div', { class: 'card' },
      h('h2', {}, `Edit ${direction} rules`),
      h('p', {}, `${groupId} - ${group.GroupName}`),
      editor,
      h('div', { class: 'toolbar' },
        h('button', { type: 'button', onclick: () => { location.hash = `#/groups/${groupId}`; } }, 'Cancel'),
        h('button', { type: 'button', id: 'preview-changes', onclick: doPreview }, 'Preview changes'),
        h('label', {}, flush, ' Also cut the tracked flows the new rules no longer allow'),
        h('button', { type: 'button', class: 'primary', id: 'save-rules', onclick: save }, 'Save rules'))),
      previewBox);
  },
};
