"""Submitting jobs to a cluster over its dashboard's HTTP API, as Ray's
``ray.job_submission``: ``JobSubmissionClient("http://HEAD:8265").submit_job(
entrypoint="python run.py", runtime_env={"working_dir": "./"})``."""

from nebula.job_submission._client import JobDetails, JobStatus, JobSubmissionClient, JobType

__all__ = ["JobDetails", "JobStatus", "JobSubmissionClient", "JobType"]
