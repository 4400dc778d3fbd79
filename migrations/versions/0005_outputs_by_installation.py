"""published outputs keyed by (installation, repository, marker)

A marker names an output within one repository: keyed by marker alone, a push on one
repository found another repository's issue record and edited that number in its own
repository. Each existing row keeps its place: its installation is that of the delivery
that published it when the inbox still holds it, else 0 (NO_INSTALLATION in
agents/store/tables.py), which no installation's lookup finds, so its output is found
again on GitHub by its marker and recorded under the new key.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# SQLite keeps the old unique constraint unnamed: batch mode names it by this convention to drop it.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}

FROM_INBOX = """
UPDATE published_outputs SET installation_id = (
    SELECT inbox.installation_id FROM inbox WHERE inbox.delivery_id = published_outputs.delivery_id
)
WHERE EXISTS (
    SELECT 1 FROM inbox
    WHERE inbox.delivery_id = published_outputs.delivery_id AND inbox.installation_id IS NOT NULL
)
"""


def upgrade() -> None:
    marker_unique = (
        next(
            (
                c["name"]
                for c in sa.inspect(op.get_bind()).get_unique_constraints("published_outputs")
                if c["column_names"] == ["marker"]
            ),
            None,
        )
        or "uq_published_outputs_marker"
    )
    with op.batch_alter_table("published_outputs", naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column("installation_id", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.drop_constraint(marker_unique, type_="unique")
    op.execute(FROM_INBOX)
    op.create_index("uq_published_outputs_key", "published_outputs", ["installation_id", "repo", "marker"], unique=True)


def downgrade() -> None:
    # One row per marker again: the newest stands for the others.
    op.execute(
        "DELETE FROM published_outputs WHERE id NOT IN "
        "(SELECT newest FROM (SELECT max(id) AS newest FROM published_outputs GROUP BY marker) AS kept)"
    )
    op.drop_index("uq_published_outputs_key", table_name="published_outputs")
    with op.batch_alter_table("published_outputs", naming_convention=NAMING) as batch_op:
        batch_op.drop_column("installation_id")
        batch_op.create_unique_constraint("uq_published_outputs_marker", ["marker"])
