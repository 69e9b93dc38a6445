// Instances: the list (state, addresses, groups), Launch with a network-settings step (existing
// groups, or a new one), Actions → Security → Change security groups, stop, start, terminate.
'use strict';

function instancesOf(answer) {
  return answer.Reservations.flatMap(r => r.Instances);
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
      h('table', {}, h('thead', {}, h('tr', {}, ['', 'Name', 'Instance ID', 'Instance state', 'Private IPv4 address', 'VPC ID', 'Security groups'].map(t => h('th', {}, t)))),
        h('tbody', { id: 'instance-rows' }, instances.map(i => h('tr', { 'data-instance-id': i.InstanceId },
          h('td', {}, h('input', { type: 'checkbox', class: 'instance-select', onchange: (e) => { e.target.checked ? selected.add(i.InstanceId) : selected.delete(i.InstanceId); } })),
          h('td', {}, tagValue(i.Tags, 'Name') || '–'), h('td', {}, i.InstanceId),
          h('td', { class: 'instance-state' }, i.State.Name), h('td', {}, i.PrivateIpAddress || '–'), h('td', {}, i.VpcId || '–'),
          h('td', { class: 'instance-groups' }, i.SecurityGroups.map(g => g.GroupId).join(', '))))))));
  },

  /// Launch: name, VPC, and the network settings: existing groups or a new group.
  async launch() {
    const [vpcs, groups] = await Promise.all([call('DescribeVpcs', {}), call('DescribeSecurityGroups', {})]);
    const name = h('input', { id: 'launch-name' });
    const vpc = h('select', { id: 'launch-vpc' }, vpcs.Vpcs.map(v => h('option', { value: v.VpcId }, v.VpcId + (v.IsDefault ? ' (default)' : ''))));
    vpc.value = (vpcs.Vpcs.find(v => v.IsDefault) || vpcs.Vpcs[0] || {}).VpcId;
    const mode = h('select', { id: 'launch-group-mode' }, h('option', { value: 'existing' }, 'Select existing security group'), h('option', { value: 'create' }, 'Create security group'));
    const existing = h('select', { id: 'launch-groups', multiple: true, size: 6 });
    const fill = () => existing.replaceChildren(...groups.SecurityGroups.filter(g => g.VpcId === vpc.value)
      .map(g => h('option', { value: g.GroupId }, `${g.GroupId} ${g.GroupName}`)));
    fill();
    vpc.addEventListener('change', fill);
    const newName = h('input', { id: 'launch-new-group-name', value: 'launch-wizard-1' });
    const sshFrom = h('input', { id: 'launch-ssh-from', value: '0.0.0.0/0' });
    const submit = async () => {
      try {
        let ids = [...existing.selectedOptions].map(o => o.value);
        if (mode.value === 'create') {
          const created = await call('CreateSecurityGroup', { GroupName: newName.value, Description: `${newName.value} created by the launch`, VpcId: vpc.value });
          await call('AuthorizeSecurityGroupIngress', { GroupId: created.GroupId, IpPermissions: [
            { IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: sshFrom.value }] }] });
          ids = [created.GroupId];
        }
        const members = { MinCount: 1, MaxCount: 1, SecurityGroupIds: ids };
        if (name.value) members.TagSpecifications = [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: name.value }] }];
        const launched = await call('RunInstances', members);
        location.hash = '#/instances';
        await Instances.list();
        flash(`Successfully initiated launch of instance ${launched.Instances[0].InstanceId}`);
      } catch (e) { failed(e); }
    };
    show(h('div', { class: 'card' }, h('h2', {}, 'Launch an instance'),
      h('label', {}, 'Name', name),
      h('h3', {}, 'Network settings'), h('label', {}, 'VPC', vpc), h('label', {}, 'Firewall (security groups)', mode),
      h('label', {}, 'Security groups', existing),
      h('label', {}, 'New security group name', newName), h('label', {}, 'Allow SSH traffic from', sshFrom),
      h('div', { class: 'toolbar' }, h('a', { href: '#/instances' }, 'Cancel'), h('button', { class: 'primary', id: 'launch-submit', onclick: submit }, 'Launch instance'))));
  },

  /// Change security groups: the instance's groups, add or remove, same VPC.
  async changeGroups(instanceId) {
    const [answer, groups] = await Promise.all([call('DescribeInstances', { InstanceIds: [instanceId] }), call('DescribeSecurityGroups', {})]);
    const instance = instancesOf(answer)[0];
    const chosen = instance.SecurityGroups.map(g => g.GroupId);
    const list = h('ul', { id: 'change-groups-list' });
    const redraw = () => list.replaceChildren(...chosen.map((id, i) => h('li', {}, id, ' ',
      h('button', { class: 'change-groups-remove', onclick: () => { chosen.splice(i, 1); redraw(); } }, 'Remove'))));
    redraw();
    const pick = h('select', { id: 'change-groups-pick' }, groups.SecurityGroups.filter(g => g.VpcId === instance.VpcId)
      .map(g => h('option', { value: g.GroupId }, `${g.GroupId} ${g.GroupName}`)));
    const add = h('button', { id: 'change-groups-add', onclick: () => { if (!chosen.includes(pick.value)) chosen.push(pick.value); redraw(); } }, 'Add security group');
    const save = async () => {
      try {
        await call('ModifyInstanceAttribute', { InstanceId: instanceId, Groups: chosen });
        location.hash = '#/instances';
        await Instances.list();
        flash(`Security groups of ${instanceId} changed.`);
      } catch (e) { failed(e); }
    };
    show(h('div', { class: 'card' }, h('h2', {}, `Change security groups: ${instanceId}`), list, h('div', { class: 'toolbar' }, pick, add),
      h('div', { class: 'toolbar' }, h('button', { onclick: () => Instances.list().catch(failed) }, 'Cancel'),
        h('button', { class: 'primary', id: 'change-groups-save', onclick: save }, 'Save'))));
  },
};
