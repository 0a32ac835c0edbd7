# Copyright: sysgenpro
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The S3-compatible store the filestore modules write to (object_storage.argument_spec()).
    DOCUMENTATION = r"""
options:
  destination_s3:
    description:
      - S3-compatible object storage, one object per file under O(destination_s3.prefix). Needs boto3 on
        the host that runs the module.
      - Every upload is a single C(PutObject) carrying the SHA-1 that the file's name promises, so a store
        that checks checksums refuses wrong bytes; files over 5 GiB (one PUT's limit) are refused.
    type: dict
    suboptions:
      endpoint_url:
        description: URL of the store (such as C(https://minio.example:9000)); omit it for AWS S3.
        type: str
      bucket:
        description: The bucket; it must exist.
        type: str
        required: true
      prefix:
        description: Key prefix of the filestore (such as C(filestore/acme)); empty for the bucket's root.
        type: str
        default: ""
      region:
        description: Region of the bucket.
        type: str
      access_key:
        description: Access key ID; omit it to use boto3's usual sources (environment, profile, role).
        type: str
      secret_key:
        description: Secret access key. Never logged nor returned.
        type: str
      session_token:
        description: Session token of temporary credentials.
        type: str
      validate_certs:
        description: Check the store's TLS certificate; prefer O(destination_s3.ca_bundle) to turning it off.
        type: bool
        default: true
      ca_bundle:
        description: CA bundle that signed the store's certificate (a private CA).
        type: path
      addressing_style:
        description:
          - C(path) (C(endpoint/bucket/key), works with every compatible store) or C(virtual)
            (C(bucket.endpoint)).
        type: str
        choices: [path, virtual]
        default: path
      proof:
        description:
          - How each object's SHA-1 is proven. C(checksum) reads the SHA-1 the store keeps for the object
            (a C(HEAD), no data read), and reads the object back when the store keeps none (an object
            uploaded by another tool or in several parts). C(content) always reads every object back
            and hashes it.
          - Use C(content) with a store that keeps the checksum a client sends without checking it (moto's
            emulator does so); AWS S3 and MinIO check it.
        type: str
        choices: [checksum, content]
        default: checksum
"""
