"""Adapters for AWS: the Lambda entry point, SNS, DynamoDB, Secrets Manager/SSM and ECR.

Nothing here is imported by the CLI or the Action unless an AWS feature is asked for, and
boto3 is imported inside the functions that need it, so a plain scan never pays for it.
"""
