"""A real S3 API on 127.0.0.1: moto's threaded server (works with boto3 and aioboto3)."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tests.support.net import free_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing"


@dataclass
class S3Server:
    """A running moto server and helpers to make clients for it."""

    server: ThreadedMotoServer
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )

    def anonymous_client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str) -> None:
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name not in existing:
            client.create_bucket(Bucket=name)

    def stop(self) -> None:
        self.server.stop()


def start_s3_server() -> S3Server:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return S3Server(server=server, port=port)
