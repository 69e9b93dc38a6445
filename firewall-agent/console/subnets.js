// Subnets: the list (ID, VPC, IPv4 and IPv6 CIDRs, Availability Zone, free addresses, default
// for its zone, Name tag), narrowed by VPC.
'use strict';

/// A subnet's IPv6 CIDR blocks (the associated ones), comma separated.
function subnetIpv6(subnet) {
  return (subnet.Ipv6CidrBlockAssociationSet || [])
    .filter(a => !a.Ipv6CidrBlockState || a.Ipv6CidrBlockState.State === 'associated')
    .map(a => a.Ipv6CidrBlock).join(', ');
}

const Subnets = {
  vpc: '',

  async list() {
    const [subnets, vpcs] = await Promise.all([call('DescribeSubnets', {}), call('DescribeVpcs', {})]);
    const all = subnets.Subnets;
    const vpc = h('select', { id: 'subnet-vpc-filter' }, h('option', { value: '' }, 'All VPCs'),
      vpcs.Vpcs.map(v => h('option', { value: v.VpcId }, v.VpcId + (v.IsDefault ? ' (default)' : ''))));
    vpc.value = vpcs.Vpcs.some(v => v.VpcId === Subnets.vpc) ? Subnets.vpc : '';
    const heading = h('h2', {});
    const body = h('tbody', { id: 'subnet-rows' });
    const draw = () => {
      Subnets.vpc = vpc.value;
      const shown = all.filter(s => !vpc.value || s.VpcId === vpc.value);
      heading.textContent = `Subnets (${shown.length})`;
      body.replaceChildren(...shown.map(s => h('tr', { 'data-subnet-id': s.SubnetId },
        h('td', { class: 'subnet-name' }, tagValue(s.Tags, 'Name') || '–'),
        h('td', { class: 'subnet-id' }, s.SubnetId),
        h('td', { class: 'subnet-state' }, s.State),
        h('td', { class: 'subnet-vpc' }, s.VpcId),
        h('td', { class: 'subnet-cidr' }, s.CidrBlock),
        h('td', { class: 'subnet-ipv6' }, subnetIpv6(s) || '–'),
        h('td', { class: 'subnet-az' }, `${s.AvailabilityZone} (${s.AvailabilityZoneId})`),
        h('td', { class: 'subnet-available' }, String(s.AvailableIpAddressCount)),
        h('td', { class: 'subnet-default' }, s.DefaultForAz ? 'Yes' : 'No'))));
    };
    vpc.addEventListener('change', draw);
    draw();
    show(h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, heading),
      h('div', { class: 'toolbar' }, vpc),
      h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Subnet ID', 'State', 'VPC', 'IPv4 CIDR', 'IPv6 CIDR', 'Availability Zone',
        'Available IPv4 addresses', 'Default subnet'].map(t => h('th', {}, t)))), body)));
  },
};
