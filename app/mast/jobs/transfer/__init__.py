"""File transfers of a download job: ranged HTTP (``http``) and parallel S3 (``s3``), with what they share."""
