//! The calls of the verbs that read what instances are launched with.

use super::{
    args_instances::InstanceVerb,
    params::filters,
    requests::{Failure, call},
};
use crate::api::{Call, catalogue as op, types::instance_details::*};

/// The call an instance-details verb makes.
pub fn request(verb: &InstanceVerb) -> Result<Call, Failure> {
    match verb {
        InstanceVerb::DescribeInstanceAttribute(a) => call::<op::DescribeInstanceAttribute>(|| {
            Ok(DescribeInstanceAttributeRequest {
                attribute: a.attribute.clone(),
                instance_id: a.instance_id.clone(),
            })
        }),
        InstanceVerb::DescribeInstanceTypes(a) => call::<op::DescribeInstanceTypes>(|| {
            Ok(DescribeInstanceTypesRequest {
                instance_types: a.instance_types.clone(),
                filters: filters(&a.filters)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
            })
        }),
        InstanceVerb::DescribeImages(a) => call::<op::DescribeImages>(|| {
            Ok(DescribeImagesRequest {
                image_ids: a.image_ids.clone(),
                owners: a.owners.clone(),
                filters: filters(&a.filters)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
                ..DescribeImagesRequest::default()
            })
        }),
        InstanceVerb::DescribeInstanceCreditSpecifications(a) => {
            call::<op::DescribeInstanceCreditSpecifications>(|| {
                Ok(DescribeInstanceCreditSpecificationsRequest {
                    instance_ids: a.instance_ids.clone(),
                    filters: filters(&a.filters)?,
                    max_results: a.paging.max_results,
                    next_token: a.paging.next_token.clone(),
                })
            })
        }
        InstanceVerb::GetConsoleOutput(a) => call::<op::GetConsoleOutput>(|| {
            Ok(GetConsoleOutputRequest {
                instance_id: a.instance_id.clone(),
                latest: a.latest.then_some(true),
            })
        }),
        InstanceVerb::DescribeVolumes(a) => call::<op::DescribeVolumes>(|| {
            Ok(DescribeVolumesRequest {
                volume_ids: a.volume_ids.clone(),
                filters: filters(&a.filters)?,
                max_results: a.paging.max_results,
                next_token: a.paging.next_token.clone(),
            })
        }),
    }
}
