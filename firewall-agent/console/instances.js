// Instances: the list (state, addresses, subnet, groups), an instance's page (details and its
// network interfaces), Launch with a network-settings step (VPC, subnet, existing groups or a
// new one), Actions → Security → Change security groups (per interface when it has several),
// stop, start, terminate.
'use strict';

function instancesOf(answer) {
  return answer.Reservations.flatMap(r => r.Instances);
}

/// An instance's network interfaces by device index (the primary, 0, first).
function interfacesOf(instance) {
  const index = (n) => (n.Attachment ? n.Attachment.DeviceIndex : 0);
  return (instance.NetworkInterfaces || []).slice().sort((a, b) => index(a) - index(b));
}

const Instances = {
  async list() {
    const instances = instancesOf(await call('DescribeInstances', {}));
    const selected = new Set();
    const act = (action, verb) => async () => {
      if (!selected.size) { flash('Select an instance first.', false); return; }
      try {
        await call(action, { InstanceIds: [...selected] });
        await Instances.list();
        flash(`${verb}: ${[...selected].join(', ')}`);
      } catch (e) { failed(e); }
    };
    const change = () => {
      if (selected.size !== 1) { flash('Select one instance.', false); return; }
      Instances.changeGroups([...selected][0]).catch(failed);
    };
    show(h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, `Instances (${instances.length})`), h('span', { class: 'spacer' }),
        h('button', { id: 'instance-stop', onclick: act('StopInstances', 'Stopping') }, 'Stop instance'),
        h('button', { id: 'instance-start', onclick: act('StartInstances', 'Starting') }, 'Start instance'),
        h('button', { id: 'instance-terminate', class: 'danger', onclick: act('TerminateInstances', 'Terminating') }, 'Terminate instance'),
        h('button', { id: 'instance-change-groups', onclick: change }, 'Actions → Security → Change security groups'),
        h('button', { id: 'launch-instance', class: 'primary', onclick: () => Instances.launch().catch(failed) }, 'Launch instances')),
      h('table', {}, h('thead', {}, h('tr', {}, ['', 'Name', 'Instance ID', 'Instance state', 'Private IPv4 address', 'VPC ID', 'Subnet ID', 'Security groups'].map(t => h('th', {}, t)))),
        h('tbody', { id: 'instance-rows' }, instances.map(i => h('tr', { 'data-instance-id': i.InstanceId },
          h('td', {}, h('input', { type: 'checkbox', class: 'instance-select', onchange: (e) => { e.target.checked ? selected.add(i.InstanceId) : selected.delete(i.InstanceId); } })),
          h('td', {}, tagValue(i.Tags, 'Name') || '–'), h('td', {}, h('a', { href: `#/instances/${i.InstanceId}`, class: 'instance-link' }, i.InstanceId)),
          h('td', { class: 'instance-state' }, i.State.Name), h('td', {}, i.PrivateIpAddress || '–'), h('td', {}, i.VpcId || '–'),
          h('td', { class: 'instance-subnet' }, i.SubnetId || '–'),
          h('td', { class: 'instance-groups' }, (i.SecurityGroups || []).map(g => g.GroupId).join(', '))))))));
  },

  /// An instance's page: its details and its network interfaces (each linked to its page).
  async show(instanceId) {
    const instance = instancesOf(await call('DescribeInstances', { InstanceIds: [instanceId] }))[0];
    const interfaces = interfacesOf(instance);
    const row = (k, v, cls) => h('tr', {}, h('th', {}, k), h('td', { class: cls }, v));
    const details = h('table', { id: 'instance-details' }, h('tbody', {},
      row('Instance ID', instance.InstanceId), row('Name', tagValue(instance.Tags, 'Name') || '–'),
      row('Instance state', instance.State.Name, 'instance-state'), row('Instance type', instance.InstanceType),
      row('Launch time', instance.LaunchTime), row('Private IPv4 address', instance.PrivateIpAddress || '–'),
      row('VPC ID', instance.VpcId || '–'), row('Subnet ID', instance.SubnetId || '–', 'instance-subnet'),
      row('Security groups', groupLinks(instance.SecurityGroups), 'instance-groups')));
    const table = h('table', { id: 'instance-interfaces' }, h('thead', {}, h('tr', {}, ['Interface ID', 'Device index', 'Private IPv4 address',
      'IPv6 addresses', 'Subnet ID', 'Security groups', 'Status', 'MAC address', 'Description'].map(t => h('th', {}, t)))),
    h('tbody', {}, interfaces.map(n => h('tr', { 'data-interface-id': n.NetworkInterfaceId },
      h('td', {}, h('a', { href: `#/network-interfaces/${n.NetworkInterfaceId}`, class: 'interface-link' }, n.NetworkInterfaceId)),
      h('td', { class: 'interface-device-index' }, n.Attachment ? String(n.Attachment.DeviceIndex) : '–'),
      h('td', { class: 'interface-ip' }, n.PrivateIpAddress),
      h('td', {}, (n.Ipv6Addresses || []).map(x => x.Ipv6Address).join(', ') || '–'),
      h('td', { class: 'interface-subnet' }, n.SubnetId),
      h('td', { class: 'interface-groups' }, groupLinks(n.Groups)),
      h('td', {}, n.Status), h('td', {}, n.MacAddress), h('td', {}, n.Description || '–')))));
    const back = `#/instances/${instanceId}`;
    show(h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, `Instance summary for ${instanceId}`), h('span', { class: 'spacer' }),
        h('button', { id: 'instance-change-groups', onclick: () => Instances.changeGroups(instanceId, back).catch(failed) }, 'Actions → Security → Change security groups')),
      details),
    h('div', { class: 'card' }, h('h3', {}, `Network interfaces (${interfaces.length})`), table));
  },

  /// Launch: name, and the network settings: VPC, subnet (the VPC's default one first), and
  /// existing groups or a new group.
  async launch() {
    const [vpcs, subnets, groups] = await Promise.all([call('DescribeVpcs', {}), call('DescribeSubnets', {}), call('DescribeSecurityGroups', {})]);
    const name = h('input', { id: 'launch-name' });
    const vpc = h('select', { id: 'launch-vpc' }, vpcs.Vpcs.map(v => h('option', { value: v.VpcId }, v.VpcId + (v.IsDefault ? ' (default)' : ''))));
    vpc.value = (vpcs.Vpcs.find(v => v.IsDefault) || vpcs.Vpcs[0] || {}).VpcId;
    const subnet = h('select', { id: 'launch-subnet' });
    const fillSubnets = () => {
      const mine = subnets.Subnets.filter(s => s.VpcId === vpc.value);
      subnet.replaceChildren(...(mine.length ? mine.map(s => h('option', { value: s.SubnetId },
        [s.SubnetId, tagValue(s.Tags, 'Name'), s.CidrBlock, s.AvailabilityZone].filter(Boolean).join(' · ') + (s.DefaultForAz ? ' (default)' : '')))
        : [h('option', { value: '' }, 'No subnets in this VPC')]));
      subnet.value = (mine.find(s => s.DefaultForAz) || mine[0] || { SubnetId: '' }).SubnetId;
    };
    fillSubnets();
    vpc.addEventListener('change', fillSubnets);
    const mode = h('select', { id: 'launch-group-mode' }, h('option', { value: 'existing' }, 'Select existing security group'), h('option', { value: 'create' }, 'Create security group'));
    const existing = h('select', { id: 'launch-groups', multiple: true, size: 6 });
    const fill = () => existing.replaceChildren(...groups.SecurityGroups.filter(g => g.VpcId === vpc.value)
      .map(g => h('option', { value: g.GroupId }, `${g.GroupId} ${g.GroupName}`)));
    fill();
    vpc.addEventListener('change', fill);
    const newName = h('input', { id: 'launch-new-group-name', value: 'launch-wizard-1' });
    const sshFrom = h('input', { id: 'launch-ssh-from', value: '0.0.0.0/0' });
    const submit = async () => {
      if (!subnet.value) { flash(`Create a subnet in ${vpc.value} first.`, false); return; }
      try {
        let ids = [...existing.selectedOptions].map(o => o.value);
        if (mode.value === 'create') {
          const created = await call('CreateSecurityGroup', { GroupName: newName.value, Description: `${newName.value} created by the launch`, VpcId: vpc.value });
          await call('AuthorizeSecurityGroupIngress', { GroupId: created.GroupId, IpPermissions: [
            { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: sshFrom.value }] }] });
          ids = [created.GroupId];
        }
        const members = { MinCount: 1, MaxCount: 1, SubnetId: subnet.value, SecurityGroupIds: ids };
        if (name.value) members.TagSpecifications = [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: name.value }] }];
        const launched = await call('RunInstances', members);
        location.hash = '#/instances';
        await Instances.list();
        flash(`Successfully initiated launch of instance ${launched.Instances[0].InstanceId}`);
      } catch (e) { failed(e); }
    };
    show(h('div', { class: 'card' }, h('h2', {}, 'Launch an instance'),
      h('label', {}, 'Name', name),
      h('h3', {}, 'Network settings'), h('label', {}, 'VPC', vpc), h('label', {}, 'Subnet', subnet),
      h('label', {}, 'Firewall (security groups)', mode),
      h('label', {}, 'Security groups', existing),
      h('label', {}, 'New security group name', newName), h('label', {}, 'Allow SSH traffic from', sshFrom),
      h('div', { class: 'toolbar' }, h('a', { href: '#/instances' }, 'Cancel'), h('button', { class: 'primary', id: 'launch-submit', onclick: submit }, 'Launch instance'))));
  },

  /// Change security groups: the instance's groups, add or remove, same VPC. An instance with
  /// several network interfaces has groups per interface: the form changes the one chosen
  /// (ModifyInstanceAttribute refuses to guess), as AWS's does.
  async changeGroups(instanceId, back = '#/instances') {
    const [answer, groups] = await Promise.all([call('DescribeInstances', { InstanceIds: [instanceId] }), call('DescribeSecurityGroups', {})]);
    const instance = instancesOf(answer)[0];
    const interfaces = interfacesOf(instance);
    const several = interfaces.length > 1;
    const chosen = (instance.SecurityGroups || []).map(g => g.GroupId);
    const list = h('ul', { id: 'change-groups-list' });
    const redraw = () => list.replaceChildren(...chosen.map((id, i) => h('li', {}, id, ' ',
      h('button', { class: 'change-groups-remove', onclick: () => { chosen.splice(i, 1); redraw(); } }, 'Remove'))));
    const which = several ? h('select', { id: 'change-groups-interface' }, interfaces.map(n => h('option', { value: n.NetworkInterfaceId },
      `${n.NetworkInterfaceId} (device index ${n.Attachment ? n.Attachment.DeviceIndex : '?'}, ${n.PrivateIpAddress})`))) : null;
    const pickInterface = () => {
      const n = interfaces.find(x => x.NetworkInterfaceId === which.value);
      chosen.splice(0, chosen.length, ...n.Groups.map(g => g.GroupId));
      redraw();
    };
    if (several) { which.addEventListener('change', pickInterface); pickInterface(); }
    redraw();
    const pick = h('select', { id: 'change-groups-pick' }, groups.SecurityGroups.filter(g => g.VpcId === instance.VpcId)
      .map(g => h('option', { value: g.GroupId }, `${g.GroupId} ${g.GroupName}`)));
    const add = h('button', { id: 'change-groups-add', onclick: () => { if (!chosen.includes(pick.value)) chosen.push(pick.value); redraw(); } }, 'Add security group');
    const save = async () => {
      try {
        if (several) {
          await call('ModifyNetworkInterfaceAttribute', { NetworkInterfaceId: which.value, Groups: chosen });
          navigate(back, `Security groups of ${instanceId} (${which.value}) changed.`);
        } else {
          await call('ModifyInstanceAttribute', { InstanceId: instanceId, Groups: chosen });
          navigate(back, `Security groups of ${instanceId} changed.`);
        }
      } catch (e) { failed(e); }
    };
    show(h('div', { class: 'card' }, h('h2', {}, `Change security groups: ${instanceId}`),
      several ? h('label', {}, 'Network interface', which) : null, list, h('div', { class: 'toolbar' }, pick, add),
      h('div', { class: 'toolbar' }, h('button', { onclick: () => navigate(back) }, 'Cancel'),
        h('button', { class: 'primary', id: 'change-groups-save', onclick: save }, 'Save'))));
  },
};
