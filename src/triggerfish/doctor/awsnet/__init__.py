"""Static reachability over AWS CLI JSON exports: security groups, network ACLs and routes.

The model follows AWS Reachability Analyzer: evaluate a flow hop by hop and report the first
component that blocks it, with the explanation code AWS uses and the rule that would let it through.
"""
