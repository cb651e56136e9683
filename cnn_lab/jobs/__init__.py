"""Training jobs: owned by a person, queued fairly, run by an executor (a thread of this process), and polled by
the pages. A refresh or a second tab finds the same job through the process-wide MANAGER."""
from cnn_lab.jobs.manager import EXPECTED_ERRORS, MANAGER, Job, JobManager, NotAllowed
from cnn_lab.jobs.queue import QueueFull

__all__ = ["EXPECTED_ERRORS", "MANAGER", "Job", "JobManager", "NotAllowed", "QueueFull"]
